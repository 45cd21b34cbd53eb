// The engine API of Go code actions (ENGINE_API.md): what Run(engine *Engine) receives.
//
// This file is compiled into package main together with the user's file, so
// every name it declares is visible to user code: the API types are prefixed
// with Engine and the harness's own helpers with codeactions.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

const (
	codeactionsMaxLogLines   = 1000
	codeactionsMaxLogContent = 8000 // characters
)

// Engine is what Run receives: the request and the means to answer it.
type Engine struct {
	Params  EngineParams
	Header  EngineHeader
	Body    string
	Log     *EngineLog
	Result  *EngineResult
	Request *EngineRequest
	Secrets EngineSecrets
}

// EngineSecrets are the secrets of the code's project.
type EngineSecrets map[string]string

// Get is the secret's value, "" when the project has no such secret.
func (s EngineSecrets) Get(name string) string {
	return s[name]
}

// Lookup is the secret's value and whether the project has it.
func (s EngineSecrets) Lookup(name string) (string, bool) {
	value, ok := s[name]
	return value, ok
}

// EngineRequest carries the same request fields as Engine (the old engine's shape).
type EngineRequest struct {
	Params EngineParams
	Header EngineHeader
	Body   string
	Log    *EngineLog
}

// EngineParams are the query parameters.
type EngineParams map[string]string

// Get is the parameter's value, "" when absent.
func (p EngineParams) Get(name string) string {
	return p[name]
}

// Lookup is the parameter's value and whether it was given.
func (p EngineParams) Lookup(name string) (string, bool) {
	value, ok := p[name]
	return value, ok
}

// EngineHeader are the request headers: every value of each name.
type EngineHeader map[string][]string

// Get is the first value of the header, whatever the case of name; "" when absent.
func (h EngineHeader) Get(name string) string {
	if values := h.Values(name); len(values) > 0 {
		return values[0]
	}
	return ""
}

// Values are all values of the header, whatever the case of name.
func (h EngineHeader) Values(name string) []string {
	if values, ok := h[name]; ok {
		return values
	}
	for key, values := range h {
		if strings.EqualFold(key, name) {
			return values
		}
	}
	return nil
}

// EngineLog keeps the run's log lines in order; safe for concurrent use.
type EngineLog struct {
	mu      sync.Mutex
	lines   [][2]string
	dropped int
}

func (l *EngineLog) add(kind, content string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) >= codeactionsMaxLogLines {
		l.dropped++
		return
	}
	l.lines = append(l.lines, [2]string{kind, codeactionsTruncate(content, codeactionsMaxLogContent)})
}

func (l *EngineLog) snapshot() ([][2]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][2]string{}, l.lines...), l.dropped
}

// Debug logs a debug line.
func (l *EngineLog) Debug(content string) { l.add("debug", content) }

// Info logs an info line.
func (l *EngineLog) Info(content string) { l.add("info", content) }

// Error logs an error line.
func (l *EngineLog) Error(content string) { l.add("error", content) }

// Debugf logs a formatted debug line.
func (l *EngineLog) Debugf(format string, args ...any) { l.add("debug", fmt.Sprintf(format, args...)) }

// Infof logs a formatted info line.
func (l *EngineLog) Infof(format string, args ...any) { l.add("info", fmt.Sprintf(format, args...)) }

// Errorf logs a formatted error line.
func (l *EngineLog) Errorf(format string, args ...any) { l.add("error", fmt.Sprintf(format, args...)) }

// EngineResult is the run's answer; safe for concurrent use.
type EngineResult struct {
	mu          sync.Mutex
	value       string
	binary      bool
	statusCode  int
	contentType string
	headers     map[string][]string
}

// Set replaces the result. A string is kept as it is, a []byte is sent as bytes
// (a file to serve); anything else is JSON-encoded, falling back to fmt.Sprint.
// contentType is "json", "html", a full media type ("image/png") or anything
// else for plain text. An optional fourth argument sets response headers: a
// map[string]string, map[string][]string or http.Header.
func (r *EngineResult) Set(value any, statusCode int, contentType string, headers ...any) {
	text, binary := codeactionsEncode(value), false
	if data, ok := value.([]byte); ok {
		text, binary = base64.StdEncoding.EncodeToString(data), true
	}
	collected := map[string][]string{}
	for _, set := range headers {
		codeactionsCollectHeaders(collected, set)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.value, r.binary, r.statusCode, r.contentType, r.headers = text, binary, statusCode, contentType, collected
}

func (r *EngineResult) snapshot() (string, bool, int, string, map[string][]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.value, r.binary, r.statusCode, r.contentType, r.headers
}

// codeactionsCollectHeaders adds a map of name to string or []string (any such map
// type, e.g. http.Header) to headers; other values panic with a clear message.
func codeactionsCollectHeaders(headers map[string][]string, set any) {
	if set == nil {
		return
	}
	value := reflect.ValueOf(set)
	if value.Kind() != reflect.Map || value.Type().Key().Kind() != reflect.String {
		panic(fmt.Sprintf("Result.Set: headers must be a map[string]string or map[string][]string, not %T", set))
	}
	iter := value.MapRange()
	for iter.Next() {
		name, item := iter.Key().String(), iter.Value()
		for item.Kind() == reflect.Interface && !item.IsNil() {
			item = item.Elem()
		}
		switch {
		case item.Kind() == reflect.String:
			headers[name] = append(headers[name], item.String())
		case item.Kind() == reflect.Slice && item.Type().Elem().Kind() == reflect.String:
			for index := 0; index < item.Len(); index++ {
				headers[name] = append(headers[name], item.Index(index).String())
			}
		default:
			headers[name] = append(headers[name], fmt.Sprint(item.Interface()))
		}
	}
}

func codeactionsEncode(value any) string {
	switch v := value.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case json.RawMessage:
		return string(v)
	}
	var buffer bytes.Buffer
	encoder := json.NewEncoder(&buffer)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(value); err != nil {
		return fmt.Sprint(value)
	}
	return strings.TrimSuffix(buffer.String(), "\n")
}

func codeactionsTruncate(text string, limit int) string {
	if len(text) <= limit || utf8.RuneCountInString(text) <= limit {
		return text
	}
	count := 0
	for index := range text {
		if count == limit {
			return text[:index]
		}
		count++
	}
	return text
}

func codeactionsNewEngine(params EngineParams, header EngineHeader, body string) *Engine {
	log := &EngineLog{}
	return &Engine{
		Params:  params,
		Header:  header,
		Body:    body,
		Log:     log,
		Result:  &EngineResult{statusCode: 200, contentType: "text"},
		Request: &EngineRequest{Params: params, Header: header, Body: body, Log: log},
		Secrets: EngineSecrets{},
	}
}
