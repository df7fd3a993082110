// Package sample turns one parsed article and its package into
// BIOMEDICA-format samples: per figure, a JPEG image, the caption, and the
// 25-field JSON record of BIOMEDICA's WebDataset (image_*, article_*),
// followed by bmca's image_phash (Extension).
//
//	res, err := sample.Build(art, pkg, sample.Article{Name: pkg.Name, Entry: row, HaveEntry: ok})
//	for _, s := range res.Samples {
//		write(s.Key+".jpg", s.JPEG); write(s.Key+".txt", []byte(s.Caption)); write(s.Key+".json", s.JSON)
//	}
//
// A figure becomes a sample when it has a caption, its graphic resolves to
// an image file in the package, the image decodes, and both sides are
// larger than 20 px (BIOMEDICA's filter); otherwise it is dropped and
// counted by Reason. Deduplication across articles is the caller's job:
// each Sample carries the SHA-256 of its image file.
//
// Images: JPEG files are kept byte for byte (a CMYK JPEG is converted to
// RGB, since most readers cannot show it); PNG, GIF, TIFF, WebP and BMP
// are decoded and re-encoded as baseline JPEG at quality 95, transparent
// pixels composited onto white. BIOMEDICA instead re-encodes every image
// with Pillow's default quality 75; keeping JPEG bytes avoids a second
// lossy generation and is what makes image_hash the hash of the file PMC
// published.
package sample

import "github.com/bmca/bmca/data/phash"

// Record is the JSON member of a BIOMEDICA sample, with BIOMEDICA's field
// names and order (scripts/06_serilaize_to_webdataset_parallel.py of
// minwoosun/biomedica-etl). Fields BIOMEDICA filled from its k-means
// concept clusters or from PubMed's Entrez service have no source in a
// PMC package and are written empty: image_label_id, image_panel_type,
// image_panel_subtype and article_mesh_terms; the two label lists are [].
//
// Extension's fields follow BIOMEDICA's 25: readers that know only
// BIOMEDICA's schema ignore them.
type Record struct {
	FigureFields
	ArticleFields
	Extension
}

// Extension holds bmca's fields beyond BIOMEDICA's, written after them.
type Extension struct {
	// ImagePHash is the jpg member's perceptual hash (data/phash: 16 hex
	// digits, or "flat" for an image without contrast), which the
	// contamination check (eval/contamination) reads instead of decoding the
	// image. It is absent when the member cannot be decoded; the check then
	// tries itself.
	ImagePHash string `json:"image_phash,omitempty"`
}

// FigureFields are Record's per-figure fields, in BIOMEDICA's order.
type FigureFields struct {
	// ImageFileName is the figure's file in the package ("koaf197f1.jpg").
	ImageFileName string `json:"image_file_name"`
	// ImageClusterID is, despite its name, the figure's image id: the
	// graphic href's base name without extension ("koaf197f1").
	ImageClusterID string `json:"image_cluster_id"`
	// ImageHash is the SHA-256 (hex) of the image file as published in the
	// package. BIOMEDICA hashed a Pillow PNG re-encode of a ≤1000 px
	// thumbnail, which cannot be reproduced outside Pillow.
	ImageHash           string   `json:"image_hash"`
	ImageLabelID        string   `json:"image_label_id"`
	ImagePanelType      string   `json:"image_panel_type"`
	ImagePanelSubtype   string   `json:"image_panel_subtype"`
	ImagePrimaryLabel   []string `json:"image_primary_label"`
	ImageSecondaryLabel []string `json:"image_secondary_label"`
	// ImageSize is [width, height] in pixels.
	ImageSize [2]int `json:"image_size"`
}

// ArticleFields are Record's per-article fields, in BIOMEDICA's order. They
// are the same for every figure of an article, so Build encodes them once
// and splices them into each figure's JSON.
type ArticleFields struct {
	// ImageSet describes every figure of the article that has an image.
	ImageSet []ImageSetEntry `json:"image_set"`
	// ImageContext maps each figure's image id to the paragraphs citing
	// it; index it with ImageClusterID.
	ImageContext map[string][]string `json:"image_context"`
	// ArticleAccessionID is the PMCID ("PMC12419688"), "" when unknown.
	ArticleAccessionID string `json:"article_accession_id"`
	ArticleTitle       string `json:"article_title"`
	// ArticleJournal is the abbreviated journal name ("PLoS Biol").
	ArticleJournal string `json:"article_journal"`
	// ArticleDate is the publication date as a Unix timestamp string
	// (midnight UTC; BIOMEDICA used the ETL machine's local midnight),
	// "" when unknown.
	ArticleDate string `json:"article_date"`
	// ArticleAbstract is the abstract from the XML (BIOMEDICA took
	// PubMed's AbstractText through Entrez).
	ArticleAbstract  string   `json:"article_abstract"`
	ArticleMeshTerms []string `json:"article_mesh_terms"`
	ArticleKeywords  []string `json:"article_keywords"`
	// ArticleReferenceIDs lists the references in PubMed's ReferenceList
	// shape: {"Citation": text, "ArticleIdList": [ids]}.
	ArticleReferenceIDs   []ReferenceID `json:"article_reference_ids"`
	ArticleReferenceCount int           `json:"article_reference_count"`
	ArticleReferenceList  []string      `json:"article_reference_list"`
	ArticleSubject        []string      `json:"article_subject"`
	// ArticleCitation is the file list's "Article Citation", or one built
	// in its format from the XML ("Plant Cell. 2025 Aug 9; 37(9):koaf197").
	ArticleCitation string `json:"article_citation"`
	// ArticleLicense is the file list's license code, or one derived from
	// the XML ("CC BY", "CC BY-NC-ND", "NO-CC CODE").
	ArticleLicense string `json:"article_license"`
	// ArticleText is all text of the article XML.
	ArticleText string `json:"article_text"`
}

// FieldNames are BIOMEDICA's JSON names in order: the 25 fields of its
// json member, with which Record starts.
var FieldNames = []string{
	"image_file_name", "image_cluster_id", "image_hash", "image_label_id",
	"image_panel_type", "image_panel_subtype", "image_primary_label",
	"image_secondary_label", "image_size", "image_set", "image_context",
	"article_accession_id", "article_title", "article_journal", "article_date",
	"article_abstract", "article_mesh_terms", "article_keywords",
	"article_reference_ids", "article_reference_count", "article_reference_list",
	"article_subject", "article_citation", "article_license", "article_text",
}

// ExtensionFieldNames are Extension's JSON names in order, which follow
// FieldNames in Record.
var ExtensionFieldNames = []string{phash.Field}

// ImageSetEntry is one figure of an article's image_set.
type ImageSetEntry struct {
	ImageID       string `json:"image_id"`
	ImageFileName string `json:"image_file_name"`
	// ImagePath is the file's path in its package ("PMC12419688/koaf197f1.jpg").
	ImagePath string `json:"image_path"`
	Caption   string `json:"caption"`
	Hash      string `json:"hash"`
}

// ReferenceID is one reference in PubMed's ReferenceList shape.
type ReferenceID struct {
	Citation      string   `json:"Citation"`
	ArticleIDList []string `json:"ArticleIdList"`
}
