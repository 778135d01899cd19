package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// contentTypeJSON is the Content-Type of every response with a body.
const contentTypeJSON = "application/json; charset=utf-8"

// Messages of Durable Functions' generic error bodies.
const (
	msgBadArguments = "One or more of the arguments submitted is incorrect"
	msgInternal     = "Something went wrong while processing your request"
	msgInvalidJSON  = "Invalid JSON content"
	msgOnlyJSON     = "Only application/json request content is supported"
)

// errorBody is Durable Functions' error shape {"Message":…}.
type errorBody struct {
	Message string `json:"Message"`
}

// exceptionError is errorBody with the exception fields; StackTrace is
// always null (no stack is disclosed).
type exceptionError struct {
	Message          string  `json:"Message"`
	ExceptionMessage string  `json:"ExceptionMessage"`
	ExceptionType    string  `json:"ExceptionType"`
	StackTrace       *string `json:"StackTrace"`
}

// encodeJSON encodes v compactly without HTML escaping and without a
// trailing newline, like Newtonsoft's defaults.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// writeJSON writes v as a JSON body with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := encodeJSON(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"Message":"`+msgInternal+`"}`)
	}
	writeRawJSON(w, code, b)
}

// writeRawJSON writes b, which is JSON text, with code.
func writeRawJSON(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeEmpty writes code with no body and no Content-Type.
func writeEmpty(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(code)
}

// writeMessage writes {"Message":msg}.
func writeMessage(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Message: msg})
}

// writeException writes {"Message","ExceptionMessage","ExceptionType","StackTrace":null}.
func writeException(w http.ResponseWriter, code int, msg, exMsg, exType string) {
	writeJSON(w, code, exceptionError{Message: msg, ExceptionMessage: exMsg, ExceptionType: exType})
}

// writeArgumentError writes Durable Functions' 400 for an ArgumentException.
func writeArgumentError(w http.ResponseWriter, exMsg string) {
	writeException(w, http.StatusBadRequest, msgBadArguments, exMsg, "System.ArgumentException")
}

// writeString writes a bare JSON string body.
func writeString(w http.ResponseWriter, code int, s string) {
	writeJSON(w, code, s)
}

// writeInternal writes the generic 500.
func writeInternal(w http.ResponseWriter) {
	writeMessage(w, http.StatusInternalServerError, msgInternal)
}
