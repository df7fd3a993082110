// Package tasks runs evaluation suites — zero-shot classification,
// multi-label zero-shot classification, image–text retrieval and linear
// probes — with the definitions of OpenCLIP and CLIP_benchmark.
//
// A suite is data: a YAML file naming tasks, where their data is and in which
// layout (WebDataset shards, an image folder, a CSV/TSV table, Hugging Face
// parquet; see eval/formats), class names, prompt templates and the metrics a
// leaderboard shows (see Suite and Task for the schema, and
// configs/suites/README.md). Run reads each task's data, preprocesses and
// encodes images in batches, and returns one Result per task whose metric keys
// are CLIP_benchmark's ("acc1", "acc5", "mean_per_class_recall",
// "image_retrieval_recall@5", "mean_average_precision", …) plus macro_f1,
// mean_recall, mean_auroc and a seeded bootstrap interval of every
// classification metric. A task whose data is
// absent is reported as skipped; a task that cannot be evaluated (invalid in
// the suite file, or with malformed data) is reported as failed, with the
// reason, and the suite's other tasks still run.
//
//	suite, err := tasks.LoadSuite("configs/suites/biomedica40.yaml")
//	results, err := tasks.Run(ctx, suite, tasks.Env{
//		Encoder:  enc,                          // *clip.Encoder satisfies Encoder
//		Tokenize: tasks.FromTokenizer(tok),
//		Image:    preprocess.OpenAI(224).Apply, // encoded bytes → [3,H,W]
//		Cache:    cache.New(dir),               // optional: eval/cache
//		ModelKey: key,                          // what identifies the model's features
//	})
//
// Image features depend only on the model and the data, so they are computed
// once per split (Features) and, with Env.Cache, kept across runs under
// FeatureKey; class names, prompts and metrics can change without encoding an
// image again. Linear probes fit eval/probe's logistic regression on the
// training split's features.
//
// The lower-level pieces are usable alone: BuildClassifier and
// ClassifierFromTokens build OpenCLIP's zero-shot weights, and the metric
// functions (TopKAccuracy, BalancedAccuracy, MacroF1, BootstrapCI,
// ClassificationMetrics, RetrievalRecall, AveragePrecision, AUROC,
// MultiLabelMetrics) take plain slices.
//
// The package knows nothing of GoMLX: the model is reached through the small
// Encoder interface, images through an ImageFunc, text through a TokenizeFunc.
// Library code never prints; progress goes to Env.Progress.
package tasks
