module atlas-stream-webhook/benchmarks/go-webhook

go 1.19
