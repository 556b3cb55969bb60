package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
)

// maxBody caps a request body.
const maxBody = 64 << 10

// writeJSON writes v with status code. API responses are never cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeBody decodes the request body into dst (a pointer to a struct with
// json tags) strictly: at most maxBody bytes, within BodyTimeout (a 408
// after it); one JSON object and nothing
// after it; only the struct's field names, spelled exactly, each once; the
// right types. An empty body leaves dst as it is.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return errTooLarge
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("%w: the body did not arrive in time", errTimeout)
		}
		return badRequest("cannot read the body")
	}
	bodyRead(r)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := checkKeys(data, jsonFields(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest("field %q: wrong type (want %s)", te.Field, te.Type.Kind())
		}
		return badRequest("the body is not a valid JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("the body holds more than one JSON value")
	}
	return nil
}

// checkKeys requires data to be one JSON object whose keys are all in
// allowed, each at most once. encoding/json alone would take "FILENAME" for
// "filename" and keep the last of two equal keys.
func checkKeys(data []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return badRequest("the body must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return badRequest("the body is not a valid JSON object")
		}
		key, _ := tok.(string)
		if !allowed[key] {
			return badRequest("unknown field %q", truncate(key, 32))
		}
		if seen[key] {
			return badRequest("field %q given twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return badRequest("the body is not a valid JSON object")
		}
	}
	return nil
}

// jsonFields lists the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}
