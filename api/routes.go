package api

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redback-dev/redback/api/console"
)

// handlerFunc is a handler that leaves its errors to the adapter.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// routes builds the router. The router matches the encoded path and never
// cleans it, so "..", "%2F" and the like reach the handlers, which refuse
// them with 400, instead of being redirected or routed elsewhere.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter().UseEncodedPath().SkipClean(true)
	add := func(name, path string, a access, h handlerFunc, methods ...string) {
		var hh http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
		hh = s.guard(a, hh)
		if a != public {
			hh = s.audited(hh)
		}
		r.Handle(path, instrument(name, hh)).Methods(methods...).Name(name)
	}

	add("login", "/api/auth/login", public, s.login, http.MethodPost)
	add("logout", "/api/auth/logout", readOnly, s.logout, http.MethodPost)

	add("backup_create", "/api/backup/create", adminOnly, s.createBackup, http.MethodPost)
	add("backup_list", "/api/backup/list", readOnly, s.listBackups, http.MethodGet)
	add("backup_download", "/api/backup/download/{filename:.+}", readOnly, s.download, http.MethodGet, http.MethodHead)
	add("backup_restore", "/api/backup/restore", adminOnly, s.restore, http.MethodPost)
	add("backup_verify", "/api/backup/verify/{filename:.+}", adminOnly, s.verify, http.MethodPost)
	add("backup_drill", "/api/backup/drill/{filename:.+}", adminOnly, s.drill, http.MethodPost)
	add("backup_delete", "/api/backup/delete/{filename:.+}", adminOnly, s.deleteBackup, http.MethodDelete)
	add("backup_stats", "/api/backup/stats", readOnly, s.backupStats, http.MethodGet)
	add("backup_keys", "/api/backup/keys/{filename:.+}", readOnly, s.keys, http.MethodGet)
	add("backup_show", "/api/backup/show/{filename:.+}", readOnly, s.show, http.MethodGet)
	add("backup_diff", "/api/backup/diff", readOnly, s.diff, http.MethodGet)
	add("backup_upload", "/api/backup/upload", adminOnly, s.upload, http.MethodPost, http.MethodPut)
	add("backup_pin", "/api/backup/pin/{filename:.+}", adminOnly, s.pin, http.MethodPost)
	add("backup_unpin", "/api/backup/unpin/{filename:.+}", adminOnly, s.unpin, http.MethodPost)
	add("redis_stats", "/api/stats", readOnly, s.redisStats, http.MethodGet)
	add("jobs", "/api/jobs", readOnly, s.listJobs, http.MethodGet)
	add("job", "/api/jobs/{id}", readOnly, s.job, http.MethodGet)
	add("targets", "/api/targets", readOnly, s.listTargets, http.MethodGet)

	add("healthz", "/healthz", public, s.healthz, http.MethodGet, http.MethodHead)
	add("readyz", "/readyz", public, s.readyz, http.MethodGet, http.MethodHead)
	mh := s.opt.Metrics
	if mh == nil {
		mh = promhttp.Handler()
	}
	r.Handle("/metrics", instrument("metrics", mh)).Methods(http.MethodGet).Name("metrics")

	// The web console: its page at /, its assets under /console/; no
	// token (the page holds no data; it logs in through the API).
	page := instrument("console", console.Handler())
	r.Handle("/", page).Methods(http.MethodGet, http.MethodHead).Name("console")
	r.PathPrefix("/console/").Handler(page).Methods(http.MethodGet, http.MethodHead).Name("console")

	r.NotFoundHandler = instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errNoRoute)
	}))
	r.MethodNotAllowedHandler = instrument("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	}))
	return s.front(s.recoverer(r))
}

// routeName is the name of the route r matched ("" when none).
func routeName(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		return rt.GetName()
	}
	return ""
}
