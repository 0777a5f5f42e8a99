// Command testfn is a Lambda function serving a tiny http.Handler through lambdaurl, for the
// tests that invoke the adapter through the sandbox. It answers:
//
//	GET|POST /echo    JSON of what the handler saw, and sets the cookies "seen" and "session"
//	POST /submit      a 303 See Other to /done?name=<form name>
//	GET /bin          four binary bytes as application/octet-stream
//	GET /fail         a panic, which fails the invocation (a 502 from the function URL)
package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sort"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/aviary-deploy/aviary/web/lambdaurl"
)

// Echo is the /echo answer.
type Echo struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"rawQuery"`
	Query      map[string][]string `json:"query"`
	Cookies    map[string]string   `json:"cookies"`
	Form       map[string][]string `json:"form,omitempty"`
	Host       string              `json:"host"`
	RemoteIP   string              `json:"remoteIP"`
	UserAgent  string              `json:"userAgent"`
	Scheme     string              `json:"scheme"`
	TLS        bool                `json:"tls"`
	Multi      string              `json:"multi"`
	RequestID  string              `json:"requestID"`
	HeaderKeys []string            `json:"headerKeys"`
}

func main() { lambdaurl.Start(mux()) }

func mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		e := Echo{
			Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: r.URL.Query(),
			Cookies: map[string]string{}, Host: r.Host, UserAgent: r.UserAgent(),
			Scheme: r.Header.Get("X-Forwarded-Proto"), TLS: r.TLS != nil, Multi: r.Header.Get("X-Multi"),
		}
		for _, c := range r.Cookies() {
			e.Cookies[c.Name] = c.Value
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			e.Form = r.PostForm
		}
		e.RemoteIP, _, _ = net.SplitHostPort(r.RemoteAddr)
		if lc, ok := lambdacontext.FromContext(r.Context()); ok {
			e.RequestID = lc.AwsRequestID
		}
		for k := range r.Header {
			e.HeaderKeys = append(e.HeaderKeys, k)
		}
		sort.Strings(e.HeaderKeys)
		http.SetCookie(w, &http.Cookie{Name: "seen", Value: "1", Path: "/"})
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc", Path: "/", HttpOnly: true, Secure: true})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	})
	m.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/done?name="+url.QueryEscape(r.FormValue("name")), http.StatusSeeOther)
	})
	m.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("done: " + r.URL.Query().Get("name")))
	})
	m.HandleFunc("GET /bin", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0, 1, 0xfe, 0xff})
	})
	m.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		panic("testfn: asked to fail")
	})
	return m
}
