// Package contamination finds evaluation images among a model's training
// images: exact copies and near-duplicates (resized, re-encoded), so that a
// leaderboard can say how many of a task's images the model may have seen,
// and score the task without them.
//
// BIOMEDICA is built from PubMed Central, and several evaluation sets
// (ROCO, figures reused across papers) come from the same literature. Each
// evaluation image gets three hashes (Hashes): the SHA-256 of its file, the
// SHA-256 of its decoded pixels, and a 64-bit DCT perceptual hash (pHash) of
// a 32×32 grey thumbnail (data/phash). The training shards are then streamed once; each
// training image matches an evaluation image
//
//   - exactly by file, when its bytes — or the file the sample's json hash
//     field names (image_hash: bmca's shards store the SHA-256 of the figure
//     file as published, which is the image member's own hash when the
//     figure was a JPEG) — hash to the evaluation file's SHA-256;
//   - exactly by pixels, when the decoded pixels are identical (a PNG saved
//     again, a JPEG re-wrapped);
//   - nearly, when the perceptual hashes differ in at most MaxDistance of
//     their 64 bits (a resized or re-encoded copy).
//
// The file tier reads no pixels. The perceptual tier needs the perceptual
// hash of every training image, taken from the cheapest source that has
// it: the HashCache, which keeps each shard's hashes once the shard has
// been read (a later scan of the same shards reads neither shard nor
// image); the sample's json, where bmca's ETL stores it (image_phash,
// data/phash.Field); else a decode — JPEGs at 1/8 scale from their DC
// coefficients (the entropy decoding of every code is the floor), other
// formats in full. A candidate is decoded in full only to tell an exact
// pixel copy from a near one. BIOMEDICA's own image_hash is the SHA-256 of
// a PNG re-encode of a ≤1000 px thumbnail by Pillow, which cannot be
// reproduced outside Pillow, so its shards are matched by pixels, and
// their images decoded on the first scan.
//
// Limits: a copy that was cropped, padded, rotated, or placed as one panel
// of a multi-panel figure is not found; images with almost no contrast have
// uninformative perceptual hashes and only match exactly.
//
//	idx := contamination.NewIndex(contamination.DefaultMaxDistance)
//	absent, err := idx.AddSuite(ctx, suite, nil, nil) // hashes every task's images
//	opts := contamination.ScanOptions{Cache: contamination.NewHashCache(dir)}
//	stats, err := idx.Scan(ctx, stream.Config{Shards: []string{"biomedica:commercial"}}, opts)
//	reports := idx.Reports()                          // task name → *tasks.Overlap, for tasks.Env.Overlaps
package contamination
