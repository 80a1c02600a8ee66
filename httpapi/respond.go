package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

const (
	headerNSQContentType = "X-NSQ-Content-Type"
	// nsqContentTypeV1 is what go-nsq checks to parse /lookup without the
	// pre-1.0 envelope; without it go-nsq silently sees no producers.
	nsqContentTypeV1 = "nsq; version=1.0"
	contentTypeJSON  = "application/json; charset=utf-8"

	headerLeader       = "X-Raftlookupd-Leader"
	headerAppliedIndex = "X-Raftlookupd-Applied-Index"
	headerLastContact  = "X-Raftlookupd-Last-Contact"
)

// apiError is a response that is not a success: a status code and the text
// of the {"message":...} body.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, message string) *apiError {
	return &apiError{status: status, message: message}
}

// The nsqlookupd error texts (docs/COMPATIBILITY.md#http-endpoints), plus raftlookupd's own.
var (
	errInvalidRequest     = errorf(http.StatusBadRequest, "INVALID_REQUEST")
	errMissingTopic       = errorf(http.StatusBadRequest, "MISSING_ARG_TOPIC")
	errInvalidTopic       = errorf(http.StatusBadRequest, "INVALID_ARG_TOPIC")
	errMissingChannel     = errorf(http.StatusBadRequest, "MISSING_ARG_CHANNEL")
	errInvalidChannel     = errorf(http.StatusBadRequest, "INVALID_ARG_CHANNEL")
	errMissingNode        = errorf(http.StatusBadRequest, "MISSING_ARG_NODE")
	errInvalidConsistency = errorf(http.StatusBadRequest, "INVALID_ARG_CONSISTENCY")
	errTopicNotFound      = errorf(http.StatusNotFound, "TOPIC_NOT_FOUND")
	errChannelNotFound    = errorf(http.StatusNotFound, "CHANNEL_NOT_FOUND")
	errNotFound           = errorf(http.StatusNotFound, "NOT_FOUND")
	errMethodNotAllowed   = errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	errInternal           = errorf(http.StatusInternalServerError, "INTERNAL_ERROR")
	errNoLeader           = errorf(http.StatusServiceUnavailable, "NO_LEADER")
	errLeaderUnreachable  = errorf(http.StatusServiceUnavailable, "LEADER_UNREACHABLE")
	errShuttingDown       = errorf(http.StatusServiceUnavailable, "SHUTTING_DOWN")
	errUnauthorized       = errorf(http.StatusUnauthorized, "UNAUTHORIZED")
	errNotLeader          = errorf(http.StatusConflict, "NOT_LEADER")
)

// v1Handler is an nsqlookupd endpoint. It returns the value to encode as
// JSON, or nil for a success without a body, or an error response. Headers
// it sets on w are kept, on errors too.
type v1Handler func(w http.ResponseWriter, r *http.Request) (any, *apiError)

// v1 adapts a v1Handler to the router, the way nsqlookupd's V1 decorator
// frames every response.
func v1(h v1Handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		serveV1(w, r, h)
	}
}

// serveV1 runs h and writes its response; it returns the status sent.
func serveV1(w http.ResponseWriter, r *http.Request, h v1Handler) int {
	v, apiErr := h(w, r)
	if apiErr != nil {
		writeV1Error(w, apiErr)
		return apiErr.status
	}
	return writeV1(w, v)
}

// writeV1 writes a 200 and returns the status sent (500 if v does not
// encode). A nil value is nsqlookupd's "no data": an empty body without
// Content-Type (net/http then sends Content-Length: 0).
func writeV1(w http.ResponseWriter, v any) int {
	var body []byte
	h := w.Header()
	if v != nil {
		if raw, ok := v.(rawJSON); ok {
			body = raw
		} else {
			b, err := json.Marshal(v)
			if err != nil {
				writeV1Error(w, errInternal)
				return errInternal.status
			}
			body = b
		}
		h["Content-Type"] = contentTypeJSONValue
	}
	h[canonicalNSQContentType] = nsqContentTypeV1Value
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// Header values every V1 response carries, set without canonicalizing the
// key or allocating. Shared read-only: net/http never modifies them, and an
// append by anyone would copy (their capacity is their length).
var (
	canonicalNSQContentType = http.CanonicalHeaderKey(headerNSQContentType)
	contentTypeJSONValue    = []string{contentTypeJSON}
	nsqContentTypeV1Value   = []string{nsqContentTypeV1}
)

func writeV1Error(w http.ResponseWriter, e *apiError) {
	w.Header().Set(headerNSQContentType, nsqContentTypeV1)
	writeJSON(w, e.status, messageBody{e.message})
}

type messageBody struct {
	Message string `json:"message"`
}

// writeJSON writes v with status. json.Marshal (not an Encoder) because
// nsqlookupd's bodies have no trailing newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(messageBody{errInternal.message})
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
