// The harness of Go code actions: main() reads the job from fd 3, calls the
// user's Run and writes the outcome to fd 4 (engines/README.md), then exits.
//
// Code with its own main() and no Run is built without these files.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

const (
	codeactionsJobFD     = 3
	codeactionsOutcomeFD = 4
)

type codeactionsJob struct {
	Params  map[string]any    `json:"params"`
	Body    string            `json:"body"`
	Headers map[string]any    `json:"headers"`
	Secrets map[string]string `json:"secrets"`
}

type codeactionsOutcome struct {
	OK          bool        `json:"ok"`
	HasRun      bool        `json:"has_run"`
	Result      *string     `json:"result"`
	StatusCode  *int        `json:"status_code"`
	ContentType *string     `json:"content_type"`
	Logs        [][2]string `json:"logs"`
	LogsDropped int         `json:"logs_dropped"`
	Error       *string     `json:"error"`

	Headers        map[string][]string `json:"headers,omitempty"`
	ResultEncoding string              `json:"result_encoding,omitempty"`
}

func main() {
	job, err := codeactionsReadJob()
	if err != nil {
		codeactionsFinish(codeactionsNewEngine(EngineParams{}, EngineHeader{}, ""), "the engine could not read its job: "+err.Error())
	}
	engine := codeactionsNewEngine(codeactionsParams(job.Params), codeactionsHeader(job.Headers), job.Body)
	if job.Secrets != nil {
		engine.Secrets = EngineSecrets(job.Secrets)
	}
	codeactionsFinish(engine, codeactionsCall(engine))
}

// codeactionsCall runs Run; the failure ("" when none): a panic's value and stack.
func codeactionsCall(engine *Engine) (failure string) {
	returned := false
	defer func() {
		if returned {
			return
		}
		if value := recover(); value != nil {
			failure = codeactionsPanicText(value)
			return
		}
		// runtime.Goexit (or, before Go 1.21, panic(nil)) unwinds past Run: finish here.
		codeactionsFinish(engine, "Run did not return: it called runtime.Goexit or panic(nil)")
	}()
	Run(engine)
	returned = true
	return ""
}

// codeactionsPanicText is "panic: <value>" and the user's frames, innermost first.
func codeactionsPanicText(value any) string {
	var text strings.Builder
	if err, ok := value.(error); ok {
		fmt.Fprintf(&text, "panic: %s\n\ngoroutine running Run:\n", err.Error())
	} else {
		fmt.Fprintf(&text, "panic: %v\n\ngoroutine running Run:\n", value)
	}
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		frame, more := frames.Next()
		if frame.Function == "main.codeactionsCall" {
			break
		}
		if !strings.HasPrefix(frame.Function, "runtime.") {
			fmt.Fprintf(&text, "%s(...)\n\t%s:%d\n", frame.Function, frame.File, frame.Line)
		}
		if !more {
			break
		}
	}
	return strings.TrimRight(text.String(), "\n")
}

// codeactionsFinish writes the outcome, closes fd 4 and exits; failure "" means Run returned.
func codeactionsFinish(engine *Engine, failure string) {
	outcome := codeactionsOutcome{OK: failure == "", HasRun: true}
	if failure != "" {
		engine.Log.Error(failure)
		outcome.Error = &failure
	} else {
		value, binary, status, contentType, headers := engine.Result.snapshot()
		outcome.Result, outcome.StatusCode, outcome.ContentType = &value, &status, &contentType
		outcome.Headers = headers
		if binary {
			outcome.ResultEncoding = "base64"
		}
	}
	outcome.Logs, outcome.LogsDropped = engine.Log.snapshot()
	data, err := json.Marshal(outcome)
	if err != nil {
		data = []byte(`{"ok":false,"has_run":true,"error":"the engine could not encode the outcome"}`)
	}
	file := os.NewFile(codeactionsOutcomeFD, "outcome")
	_, _ = file.Write(data)
	_ = file.Close() // the server answers now, before this process has exited
	os.Exit(0)
}

func codeactionsReadJob() (codeactionsJob, error) {
	var job codeactionsJob
	file := os.NewFile(codeactionsJobFD, "job")
	data, err := io.ReadAll(file)
	_ = file.Close()
	if err != nil {
		return job, err
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	return job, decoder.Decode(&job)
}

// codeactionsParams keeps string values and writes others as JSON.
func codeactionsParams(raw map[string]any) EngineParams {
	params := make(EngineParams, len(raw))
	for name, value := range raw {
		params[name] = codeactionsText(value)
	}
	return params
}

// codeactionsHeader accepts a list of values or a single value per name.
func codeactionsHeader(raw map[string]any) EngineHeader {
	header := make(EngineHeader, len(raw))
	for name, value := range raw {
		if list, ok := value.([]any); ok {
			for _, item := range list {
				header[name] = append(header[name], codeactionsText(item))
			}
		} else {
			header[name] = []string{codeactionsText(value)}
		}
	}
	return header
}

func codeactionsText(value any) string {
	if text, ok := value.(string); ok {
		return text
	}
	return codeactionsEncode(value)
}
