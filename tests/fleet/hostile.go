package main

// Hostile behaviour on the HTTP side, for robustness tests of collectord's scraper.
//
// Which routes misbehave: every route under /debug/pprof/ that names something (the profiles,
// profile, trace, cmdline, symbol, and unknown names). The index page /debug/pprof/ itself and
// everything outside /debug/pprof/ stay normal, so a scraper that probes the index to discover a
// target still finds it and then meets the hostile behaviour when it scrapes.
//
// Modes (the gops side is in gops.go handleHostile):
//   slow      the real answer: status and headers (with Content-Length) at once, then the body one
//             byte per -slow-interval (default 200 ms)
//   garbage   200 with 1-64 KiB of random bytes (never starting like gzip)
//   truncated the real answer cut to half its length, with a Content-Length of what is sent
//   huge      200 streaming -huge-bytes (default 2 GiB) as fast as the client reads, chunked
//             (or with Content-Length given -huge-content-length), never held in memory
//   hang      reads the request, never answers, never closes while the client is connected
//   reset     reads the request, then closes with SO_LINGER 0, so the client gets an RST
//   error     500 with Go's exact pprof error text and headers (X-Go-Pprof: 1)
//   busy      no wrapper at all: the real handlers answer, and the runtime is made busy instead
//             (a CPU profile and a trace run for the life of the process, see target.go)

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers the real handlers on http.DefaultServeMux
	"strconv"
	"strings"
)

// pprofHandler serves net/http/pprof, wrapped in the hostile mode's behaviour.
func pprofHandler(hostile string, o *options) http.Handler {
	mux := http.DefaultServeMux
	if hostile == "none" || hostile == "busy" {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/debug/pprof/") || r.URL.Path == "/debug/pprof/" {
			mux.ServeHTTP(w, r)
			return
		}
		switch hostile {
		case "slow":
			rec := record(mux, r)
			rec.copyHeaders(w, len(rec.body.Bytes()))
			trickle(w, rec.body.Bytes(), o.slowInterval, r.Context().Done())
		case "truncated":
			rec := record(mux, r)
			body := rec.body.Bytes()
			body = body[:len(body)/2]
			rec.copyHeaders(w, len(body))
			w.Write(body)
		case "garbage":
			body := randomBytes()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			w.Write(body)
		case "huge":
			w.Header().Set("Content-Type", "application/octet-stream")
			if o.hugeLength {
				w.Header().Set("Content-Length", strconv.FormatInt(o.hugeBytes, 10))
			}
			w.WriteHeader(http.StatusOK)
			streamHuge(w, o.hugeBytes)
		case "hang":
			<-r.Context().Done()
		case "reset":
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic(http.ErrAbortHandler)
			}
			conn, _, err := hj.Hijack()
			if err != nil {
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			conn.Close()
		case "error":
			serveGoError(w, http.StatusInternalServerError, pprofErrorText(r.URL.Path))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// pprofErrorText is the text Go's net/http/pprof sends with a 500 on that route: the profiler or
// tracer already in use for profile and trace, a failed collection for named profiles.
func pprofErrorText(path string) string {
	switch path {
	case "/debug/pprof/profile":
		return "Could not enable CPU profiling: cpu profiling already in use"
	case "/debug/pprof/trace":
		return "Could not enable tracing: runtime error: tracing is already enabled"
	}
	return "failed to collect profile"
}

// serveGoError answers like net/http/pprof's serveError.
func serveGoError(w http.ResponseWriter, status int, txt string) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Go-Pprof", "1")
	h.Del("Content-Disposition")
	w.WriteHeader(status)
	fmt.Fprintln(w, txt)
}

// recorder captures a real handler's answer so a hostile mode can replay it its own way.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func record(h http.Handler, r *http.Request) *recorder {
	rec := &recorder{header: make(http.Header)}
	h.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

// copyHeaders sends the recorded status and headers, declaring length body bytes.
func (rec *recorder) copyHeaders(w http.ResponseWriter, length int) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", http.DetectContentType(rec.body.Bytes()))
	}
	w.Header().Set("Content-Length", strconv.Itoa(length))
	w.WriteHeader(rec.status)
}
