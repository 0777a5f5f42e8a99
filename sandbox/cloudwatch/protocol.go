package cloudwatch

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CloudWatch speaks three wire protocols, and the sandbox serves all of them over one set of
// typed shapes: Smithy RPC v2 CBOR (current aws-sdk-go-v2 clients), awsJson1_0, and the query
// protocol with XML responses (older SDKs and Debian's awscli).
type protocol int

const (
	protoQuery protocol = iota
	protoCBOR
	protoJSON
)

const (
	serviceName = "GraniteServiceVersion20100801"
	xmlns       = "http://monitoring.amazonaws.com/doc/2010-08-01/"
)

// detect works out a request's protocol and operation.
func detect(r *http.Request) (protocol, string, error) {
	if strings.HasPrefix(r.URL.Path, "/service/") {
		// /service/GraniteServiceVersion20100801/operation/GetMetricData
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if len(parts) != 4 || parts[0] != "service" || parts[2] != "operation" || parts[1] != serviceName {
			return protoCBOR, "", fmt.Errorf("unknown RPC v2 path %s", r.URL.Path)
		}
		return protoCBOR, parts[3], nil
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		op, ok := strings.CutPrefix(target, serviceName+".")
		if !ok {
			return protoJSON, "", fmt.Errorf("unknown X-Amz-Target %s", target)
		}
		return protoJSON, op, nil
	}
	if err := r.ParseForm(); err != nil {
		return protoQuery, "", err
	}
	return protoQuery, r.Form.Get("Action"), nil
}

// decodeInput reads the operation's input into v.
func decodeInput(p protocol, r *http.Request, v any) error {
	switch p {
	case protoQuery:
		return decodeQuery(r.Form, "", v)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return nil
	}
	if p == protoCBOR {
		return cbor.Unmarshal(body, v)
	}
	return json.Unmarshal(body, v)
}

// writeOutput writes a successful response.
func writeOutput(w http.ResponseWriter, p protocol, op, requestID string, v any) {
	w.Header().Set("x-amzn-RequestId", requestID)
	switch p {
	case protoCBOR:
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		if v == nil {
			// An output without members is an empty body.
			w.WriteHeader(http.StatusOK)
			return
		}
		b, err := cborEnc.Marshal(v)
		if err != nil {
			writeError(w, p, requestID, internalError(err))
			return
		}
		w.Header().Set("Content-Type", "application/cbor")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	case protoJSON:
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusOK)
		if v == nil {
			io.WriteString(w, "{}")
			return
		}
		json.NewEncoder(w).Encode(v)
	default:
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, op, xmlns)
		if v != nil {
			enc := xml.NewEncoder(&buf)
			if err := enc.EncodeElement(v, xml.StartElement{Name: xml.Name{Local: op + "Result"}}); err != nil {
				writeError(w, p, requestID, internalError(err))
				return
			}
			enc.Flush()
		}
		fmt.Fprintf(&buf, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, requestID, op)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes())
	}
}

var cborEnc, _ = cbor.EncOptions{Sort: cbor.SortNone}.EncMode()

// apiError is a CloudWatch error: the model's shape name (what JSON and CBOR clients match), the
// query-protocol code (what query clients and the x-amzn-query-error header carry) and status.
type apiError struct {
	Shape   string
	Code    string
	Status  int
	Sender  bool
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func invalidParameter(format string, args ...any) *apiError {
	return &apiError{Shape: "InvalidParameterValueException", Code: "InvalidParameterValue", Status: 400, Sender: true, Message: fmt.Sprintf(format, args...)}
}

func missingParameter(name string) *apiError {
	return &apiError{Shape: "MissingRequiredParameterException", Code: "MissingParameter", Status: 400, Sender: true,
		Message: fmt.Sprintf("The parameter %s is required.", name)}
}

func resourceNotFound(format string, args ...any) *apiError {
	return &apiError{Shape: "ResourceNotFound", Code: "ResourceNotFound", Status: 404, Sender: true, Message: fmt.Sprintf(format, args...)}
}

func invalidNextToken() *apiError {
	return &apiError{Shape: "InvalidNextToken", Code: "InvalidNextToken", Status: 400, Sender: true, Message: "The service returned an invalid NextToken."}
}

func internalError(err error) *apiError {
	return &apiError{Shape: "InternalServiceFault", Code: "InternalServiceError", Status: 500, Message: err.Error()}
}

func validationError(msg string) *apiError {
	return &apiError{Shape: "ValidationError", Code: "ValidationError", Status: 400, Sender: true, Message: msg}
}

func writeError(w http.ResponseWriter, p protocol, requestID string, e *apiError) {
	w.Header().Set("x-amzn-RequestId", requestID)
	fault := "Receiver"
	if e.Sender {
		fault = "Sender"
	}
	switch p {
	case protoCBOR, protoJSON:
		w.Header().Set("x-amzn-query-error", e.Code+";"+fault)
		body := map[string]any{"__type": "com.amazonaws.cloudwatch#" + e.Shape, "message": e.Message}
		if p == protoCBOR {
			b, _ := cborEnc.Marshal(body)
			w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
			w.Header().Set("Content-Type", "application/cbor")
			w.WriteHeader(e.Status)
			w.Write(b)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(e.Status)
		json.NewEncoder(w).Encode(body)
	default:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		var msg bytes.Buffer
		xml.EscapeText(&msg, []byte(e.Message))
		fmt.Fprintf(w, `<?xml version="1.0"?>`+"\n"+`<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			xmlns, fault, e.Code, msg.String(), requestID)
	}
}

// ts is a timestamp as each protocol carries it: CBOR tag 1 epoch seconds, JSON epoch seconds,
// query ISO 8601.
type ts struct{ time.Time }

func (t ts) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)), nil
}

func (t *ts) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return t.parse(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	t.Time = epoch(f)
	return nil
}

func epoch(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func (t ts) MarshalCBOR() ([]byte, error) {
	return cborEnc.Marshal(cbor.Tag{Number: 1, Content: float64(t.UnixMilli()) / 1000})
}

func (t *ts) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cbor.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case time.Time:
		t.Time = x.UTC()
	case cbor.Tag:
		switch c := x.Content.(type) {
		case float64:
			t.Time = epoch(c)
		case uint64:
			t.Time = time.Unix(int64(c), 0).UTC()
		case int64:
			t.Time = time.Unix(c, 0).UTC()
		default:
			return fmt.Errorf("timestamp tag content %T", x.Content)
		}
	case float64:
		t.Time = epoch(x)
	case uint64:
		t.Time = time.Unix(int64(x), 0).UTC()
	case int64:
		t.Time = time.Unix(x, 0).UTC()
	default:
		return fmt.Errorf("timestamp of type %T", v)
	}
	return nil
}

func (t ts) MarshalText() ([]byte, error) {
	return []byte(t.UTC().Format("2006-01-02T15:04:05.000Z")), nil
}

func (t *ts) UnmarshalText(b []byte) error { return t.parse(string(b)) }

func (t *ts) parse(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		t.Time = epoch(f)
		return nil
	}
	return fmt.Errorf("timestamp %q is not ISO 8601", s)
}

// stringMap is a map as the query protocol writes it: entry/key/value.
type stringMap map[string]float64

func (m stringMap) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if len(m) == 0 {
		return nil
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for k, v := range m {
		if err := e.EncodeElement(struct {
			Key   string  `xml:"key"`
			Value float64 `xml:"value"`
		}{k, v}, xml.StartElement{Name: xml.Name{Local: "entry"}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// decodeQuery fills v from query-protocol form values: nested members joined by dots, lists as
// Name.member.N, maps as Name.entry.N.key / .value.
func decodeQuery(form url.Values, prefix string, v any) error {
	return decodeQueryValue(form, prefix, reflectValue(v))
}

func queryName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
