// Package tasks runs zero-shot evaluation suites — classification and
// image–text retrieval — over WebDataset shards, with the definitions of
// OpenCLIP and CLIP_benchmark.
//
// A suite is data: a YAML file naming tasks, their shards, class names and
// prompt templates (see Task for the schema). Run streams each task's shards,
// preprocesses and encodes images in batches, and returns one Result per task
// whose metric keys are CLIP_benchmark's ("acc1", "acc5",
// "mean_per_class_recall", "image_retrieval_recall@5", …). A task whose shards
// are absent is reported as skipped, not failed.
//
//	suite, err := tasks.LoadSuite("configs/suites/biomed.yaml")
//	results, err := tasks.Run(ctx, suite, tasks.Env{
//		Encoder:  enc,                          // *clip.Encoder satisfies Encoder
//		Tokenize: tasks.FromTokenizer(tok),
//		Image:    preprocess.OpenAI(224).Apply, // encoded bytes → [3,H,W]
//	})
//
// The lower-level pieces are usable alone: BuildClassifier and
// ClassifierFromTokens build OpenCLIP's zero-shot weights, and the metric
// functions (TopKAccuracy, BalancedAccuracy, MacroF1, BootstrapCI,
// RetrievalRecall) take plain slices.
//
// The package knows nothing of GoMLX: the model is reached through the small
// Encoder interface, images through an ImageFunc, text through a TokenizeFunc.
// Library code never prints; progress goes to Env.Progress.
package tasks
