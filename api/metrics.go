package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HTTP metrics, in the default registry that /metrics serves. The route
// label is the route's name (a small, fixed set; "unmatched" for the rest),
// never the raw path.
var (
	httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "redback_http_requests_total",
		Help: "HTTP requests answered by the API, by route, method and status code.",
	}, []string{"route", "method", "code"})
	httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "redback_http_request_duration_seconds",
		Help:    "Time to answer API requests, by route and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"})
	httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "redback_http_requests_in_flight",
		Help: "API requests being answered.",
	})
)

func init() {
	prometheus.MustRegister(httpRequests, httpDuration, httpInFlight)
}

// instrument counts and times the requests of one route.
func instrument(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerInFlight(httpInFlight,
		promhttp.InstrumentHandlerCounter(httpRequests.MustCurryWith(labels),
			promhttp.InstrumentHandlerDuration(httpDuration.MustCurryWith(labels), h)))
}
