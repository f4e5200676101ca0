// The Go peer receiver: net/http's server with no framework, GOMAXPROCS cores, the verification
// of verify.go and the in-memory state of store.go.
//
//	DIDIT_WEBHOOK_SECRET=... didit-peer-go [--host 127.0.0.1] [--port 8080] [--workers 1]
//	                                       [--accept-simple]

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	webhookPath = "/webhooks/didit"
	healthPath  = "/healthz"
	maxBody     = 1 << 20
	// After a 413 the rest of the body is read and discarded (so the client gets the answer
	// rather than a reset), up to this much; then the connection is dropped.
	maxDrain = 16 << 20
)

// A fixed answer, its headers built once: net/http takes header slices as they are.
type answer struct {
	body   []byte
	length []string
}

func newAnswer(body string) answer {
	return answer{[]byte(body), []string{strconv.Itoa(len(body))}}
}

var (
	contentTypeJSON = []string{"application/json"}
	allowPost       = []string{"POST"}
	allowGetHead    = []string{"GET, HEAD"}
	connectionClose = []string{"close"}

	answerAccepted  = newAnswer(`{"status":"accepted"}`)
	answerDuplicate = newAnswer(`{"status":"duplicate"}`)
	answerOK        = newAnswer(`{"status":"ok"}`)

	errPayloadTooLarge  = newRejection(413, "payload_too_large")
	errBadBody          = newRejection(400, "bad_content_length")
	errBodyTimeout      = newRejection(408, "body_timeout")
	errNotFound         = newRejection(404, "not_found")
	errMethodNotAllowed = newRejection(405, "method_not_allowed")
)

func reply(w http.ResponseWriter, status int, a answer) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = a.length
	w.WriteHeader(status)
	// A client that went away is no one's concern: the error is dropped.
	_, _ = w.Write(a.body)
}

func reject(w http.ResponseWriter, r *Rejection) {
	reply(w, r.Status, answer{r.body, r.length})
}

// Request bodies are read into pooled buffers; larger ones than this are not kept.
const pooledCap = 64 << 10

var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

type server struct {
	verifier *Verifier
	store    *Store
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.RequestURI
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch path {
	case webhookPath:
		if r.Method == http.MethodPost {
			s.webhook(w, r)
			return
		}
		w.Header()["Allow"] = allowPost
		reject(w, errMethodNotAllowed)
	case healthPath:
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			reply(w, 200, answerOK)
			return
		}
		w.Header()["Allow"] = allowGetHead
		reject(w, errMethodNotAllowed)
	default:
		reject(w, errNotFound)
	}
}

func (s *server) webhook(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxBody {
		// A client waiting for `100 Continue` (net/http sends it on the first read, and answers
		// any other expectation with 417 itself) sends no body after a final answer.
		tooLarge(w, r.Body, r.Header.Get("Expect") == "")
		return
	}
	// A declared length was checked above; a chunked body is bounded as it is read.
	var src io.Reader = r.Body
	if r.ContentLength < 0 {
		src = http.MaxBytesReader(w, r.Body, maxBody)
	}
	bp := buffers.Get().(*[]byte)
	body, err := readBody(src, r.ContentLength, (*bp)[:0])
	defer func() {
		if cap(body) <= pooledCap {
			*bp = body[:0]
			buffers.Put(bp)
		}
	}()
	if err != nil {
		// The words of the Rust references; the connection cannot be reused after any of them.
		var tooBig *http.MaxBytesError
		var netErr net.Error
		switch {
		case errors.As(err, &tooBig):
			tooLarge(w, r.Body, true)
		case errors.As(err, &netErr) && netErr.Timeout():
			w.Header()["Connection"] = connectionClose
			reject(w, errBodyTimeout)
		default: // cut short, or a malformed chunk
			w.Header()["Connection"] = connectionClose
			reject(w, errBadBody)
		}
		return
	}
	v, rej := s.verifier.Verify(r.Header, body)
	switch {
	case rej != nil:
		reject(w, rej)
	case s.store.Accept(&v):
		reply(w, 200, answerAccepted)
	default:
		reply(w, 200, answerDuplicate)
	}
}

// readBody reads the whole body into buf: in one read of the declared length when there is one,
// else (chunked) until EOF.
func readBody(r io.Reader, declared int64, buf []byte) ([]byte, error) {
	if declared >= 0 {
		if int64(cap(buf)) < declared {
			buf = make([]byte, 0, declared)
		}
		buf = buf[:declared]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// tooLarge answers 413 and closes the connection after reading and discarding the rest of the
// body (at most maxDrain), so that a client that writes its whole request before reading gets
// the answer rather than a reset. With drain false the connection closes at once.
func tooLarge(w http.ResponseWriter, body io.Reader, drain bool) {
	w.Header()["Connection"] = connectionClose
	reject(w, errPayloadTooLarge)
	if !drain {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	_, _ = io.CopyN(io.Discard, body, maxDrain) // the connection closes either way
}

func usage(message string) {
	fmt.Fprintf(os.Stderr, "%s\nusage: didit-peer-go [--host H] [--port N] [--workers N] [--accept-simple]\n", message)
	os.Exit(2)
}

func envOr(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

func main() {
	flags := flag.NewFlagSet("didit-peer-go", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	host := flags.String("host", envOr("HOST", "127.0.0.1"), "address to listen on")
	portText := flags.String("port", envOr("PORT", "8080"), "port to listen on (0: any free one)")
	workersText := flags.String("workers", "1", "cores to run on (GOMAXPROCS)")
	acceptSimple := flags.Bool("accept-simple", false, "also accept X-Signature-Simple (deprecated)")
	if err := flags.Parse(os.Args[1:]); err != nil {
		usage(err.Error())
	}
	if flags.NArg() > 0 {
		usage(fmt.Sprintf("unexpected argument %q", flags.Arg(0)))
	}
	port, err := strconv.Atoi(*portText)
	if err != nil || port < 0 || port > 65535 {
		usage("bad --port " + *portText)
	}
	workers, err := strconv.Atoi(*workersText)
	if err != nil || workers < 1 {
		usage("bad --workers " + *workersText)
	}
	secret := os.Getenv("DIDIT_WEBHOOK_SECRET")
	if secret == "" {
		fmt.Fprintln(os.Stderr, "DIDIT_WEBHOOK_SECRET is not set: export the destination secret Didit gave you")
		os.Exit(2)
	}
	// One process; its goroutines run on this many cores and share one store.
	runtime.GOMAXPROCS(workers)

	verifier, err := NewVerifier(secret, *acceptSimple, nil)
	if err != nil {
		usage(err.Error())
	}
	srv := &http.Server{
		Handler:           &server{verifier: verifier, store: NewStore(2*ToleranceSecs, 100_000)},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       10 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot listen on %s:%d: %v\n", *host, port, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s:%d\n", *host, ln.Addr().(*net.TCPAddr).Port)

	// SIGTERM or SIGINT: stop accepting, let the requests in flight finish (10 s at most).
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	stopped := make(chan struct{})
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx) // past the deadline, the rest is cut off at exit
		close(stopped)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-stopped
}
