// Package hub downloads files from the Hugging Face Hub into the cache
// that Python's huggingface_hub uses, so a model downloaded by either is
// found by the other:
//
//	$HF_HUB_CACHE/models--ORG--NAME/
//	    blobs/<etag>                     the content, named by its ETag (sha256 for LFS files, Git blob id otherwise)
//	    snapshots/<commit>/<file>        relative symlink to the blob
//	    refs/<revision>                  the commit a branch or tag pointed to when last resolved
//	    .no_exist/<commit>/<file>        a file the hub said does not exist at that commit
//	$HF_HUB_CACHE/.locks/models--ORG--NAME/<etag>.lock   held while the blob is written
//
// It reads the same environment as huggingface_hub (see FromEnv): HF_HOME,
// HF_HUB_CACHE, HF_ENDPOINT for mirrors, HF_TOKEN (or the token file `hf auth
// login` writes) for gated and private repositories, HF_HUB_OFFLINE. A
// download is written to <blob>.incomplete and continued with a Range request
// by the next run if interrupted; it is checked against its size and ETag
// (sha256 or Git blob id) before it enters the cache. The token is sent to
// the endpoint's origin only, never to the CDN that LFS files redirect to,
// and never appears in an error or log.
//
// An OpenCLIP model on the hub is named as open_clip names it,
// hf-hub:ORG/NAME[@REVISION]; Client.OpenCLIP fetches its config, weights
// and, for Hugging Face text towers, the tokenizer and text-model config.
// Client.Tokenizer (TokenizerAt) and Client.TextModel fetch a tokenizer
// repository or a text model's config.json alone, as transformers'
// AutoTokenizer and AutoConfig do for a name.
//
//	c, err := hub.FromEnv(os.Getenv)
//	c.Progress = os.Stderr
//	dir, err := c.CheckpointPath(ctx, "hf-hub:org/model") // a snapshot directory
//
// Package hubtest serves a local replica of the hub's resolve URLs for tests.
package hub
