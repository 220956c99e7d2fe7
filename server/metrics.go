package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus collectors, on a registry of the
// server's own (several servers in one process, as in tests, do not
// collide).
type metrics struct {
	reg              *prometheus.Registry
	requests         *prometheus.CounterVec // by endpoint and status
	promptTokens     prometheus.Counter     // prompt tokens prefilled (cache hits excluded)
	cachedTokens     prometheus.Counter
	completionTokens prometheus.Counter
	cancelled        prometheus.Counter
	queue            prometheus.Gauge
	active           prometheus.Gauge
	cacheEntries     prometheus.Gauge
	cacheBytes       prometheus.Gauge
	batchSize        prometheus.Histogram // sequences a step
	batchRows        prometheus.Histogram // tokens a step
	stepSeconds      prometheus.Histogram
	ttft             prometheus.Histogram
	itl              prometheus.Histogram
}

// latencyBuckets span 1 ms to about 30 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)

// newMetrics registers the collectors.
func newMetrics() *metrics {
	const ns = "mmrun"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "HTTP requests by endpoint and status code."}, []string{"endpoint", "code"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "prompt_tokens_total",
			Help: "Prompt tokens run through the model (those taken from the state cache are not counted)."}),
		cachedTokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "prompt_tokens_cached_total",
			Help: "Prompt tokens whose state came from the state cache."}),
		completionTokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "completion_tokens_total",
			Help: "Tokens generated."}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "generations_cancelled_total",
			Help: "Generations ended because the client went away."}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "queue_length",
			Help: "Requests waiting for a slot."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "active_sequences",
			Help: "Sequences in the running batch."}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "state_cache_entries",
			Help: "States held by the state cache."}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "state_cache_bytes",
			Help: "Bytes held by the state cache."}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_size",
			Help: "Sequences in each batch step.", Buckets: prometheus.ExponentialBuckets(1, 2, 8)}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_tokens",
			Help: "Tokens in each batch step.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "step_seconds",
			Help: "Time of each batch step.", Buckets: latencyBuckets}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "time_to_first_token_seconds",
			Help: "From a request's arrival to its first generated token.", Buckets: latencyBuckets}),
		itl: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "inter_token_latency_seconds",
			Help: "Between consecutive generated tokens of a request.", Buckets: latencyBuckets}),
	}
	m.reg.MustRegister(m.requests, m.promptTokens, m.cachedTokens, m.completionTokens, m.cancelled,
		m.queue, m.active, m.cacheEntries, m.cacheBytes, m.batchSize, m.batchRows, m.stepSeconds, m.ttft, m.itl,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in Prometheus's text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
