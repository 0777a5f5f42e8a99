package protocol

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

var (
	cborEnc, _ = cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	// cborDec keeps the library's bounds on nesting and lengths explicit: a request cannot make
	// the decoder allocate more than its own size suggests.
	cborDec, _ = cbor.DecOptions{MaxNestedLevels: 32, MaxArrayElements: 1 << 17, MaxMapPairs: 1 << 17}.DecMode()
)

// decode fills in from the request, as its protocol carries the input.
func (s *Service) decode(req *Request, in any) *Error {
	var err error
	switch req.Protocol {
	case Query:
		err = DecodeQuery(req.form, in)
	case CBOR:
		err = DecodeCBOR(req.Body, in)
	case JSON10, JSON11:
		err = DecodeJSON(req.Body, in)
	case RESTJSON, RESTXML:
		err = bindREST(req, in)
	}
	if err == nil {
		return nil
	}
	if s.DecodeError != nil {
		return s.DecodeError(err)
	}
	return &Error{Code: "SerializationException", QueryCode: "MalformedInput", Status: http.StatusBadRequest, Message: err.Error()}
}

// DecodeJSON decodes a JSON body into v; an empty body is an empty object.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return json.Unmarshal(body, v)
}

// DecodeCBOR decodes an RPC v2 CBOR body into v (struct members by their json names); an empty
// body is an empty input.
func DecodeCBOR(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	return cborDec.Unmarshal(body, v)
}

// bindREST fills a REST input: labels, query and headers by aws tags, the rest from the body.
func bindREST(req *Request, in any) error {
	v := reflect.ValueOf(in).Elem()
	if v.Kind() != reflect.Struct {
		return DecodeJSON(req.Body, in)
	}
	raw := false
	t := v.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("aws")
		if tag == "" {
			continue
		}
		f := v.Field(i)
		if tag == "body" {
			f.SetBytes(req.Body)
			raw = true
			continue
		}
		if tag == "payload" {
			raw = true
			if err := decodePayload(req, f); err != nil {
				return err
			}
			continue
		}
		where, name, _ := strings.Cut(tag, ":")
		var val string
		var has bool
		switch where {
		case "uri":
			val, has = req.labels[name]
		case "query":
			q := req.HTTP.URL.Query()
			val, has = q.Get(name), q.Has(name)
		case "header":
			val, has = req.HTTP.Header.Get(name), req.HTTP.Header.Get(name) != ""
		default:
			return fmt.Errorf("protocol: unknown aws tag %q", tag)
		}
		if !has {
			continue
		}
		if err := setScalar(f, val, name); err != nil {
			return err
		}
	}
	if raw {
		return nil
	}
	if req.Protocol == RESTXML {
		if len(bytes.TrimSpace(req.Body)) == 0 {
			return nil
		}
		return xml.Unmarshal(req.Body, in)
	}
	return DecodeJSON(req.Body, in)
}

// decodePayload decodes the whole body into a structure member that is the input's payload (a
// REST-XML payload is the member's own element: <DistributionConfig xmlns=...>). An empty body
// leaves the member zero, so that the handler can answer the service's missing-body error.
func decodePayload(req *Request, f reflect.Value) error {
	if len(bytes.TrimSpace(req.Body)) == 0 {
		return nil
	}
	if f.Kind() == reflect.Pointer {
		f.Set(reflect.New(f.Type().Elem()))
		f = f.Elem()
	}
	if req.Protocol == RESTXML {
		return xml.Unmarshal(req.Body, f.Addr().Interface())
	}
	return json.Unmarshal(req.Body, f.Addr().Interface())
}

// setScalar sets a string, number or boolean member (or a pointer to one) from its text.
func setScalar(f reflect.Value, raw, name string) error {
	if f.Kind() == reflect.Pointer {
		p := reflect.New(f.Type().Elem())
		if err := setScalar(p.Elem(), raw, name); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	if f.CanAddr() {
		if u, ok := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
			return u.UnmarshalText([]byte(raw))
		}
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%s: %q is not a boolean", name, raw)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || f.OverflowInt(n) {
			return fmt.Errorf("%s: %q is not an integer", name, raw)
		}
		f.SetInt(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, raw)
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("%s: cannot decode into %s", name, f.Type())
	}
	return nil
}

// writeOutput writes a successful response in the request's protocol.
func (s *Service) writeOutput(w http.ResponseWriter, req *Request, op *Operation, out any) {
	h := w.Header()
	switch req.Protocol {
	case CBOR:
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		if out == nil {
			w.WriteHeader(http.StatusOK) // an output without members is an empty body
			return
		}
		b, err := cborEnc.Marshal(out)
		if err != nil {
			s.writeError(w, req, Internal(err))
			return
		}
		h.Set("Content-Type", "application/cbor")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	case JSON10, JSON11:
		var b []byte
		if out == nil {
			b = []byte("{}")
		} else {
			var err error
			if b, err = json.Marshal(out); err != nil {
				s.writeError(w, req, Internal(err))
				return
			}
		}
		h.Set("Content-Type", "application/x-amz-json-1."+map[bool]string{true: "0", false: "1"}[req.Protocol == JSON10])
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	case Query:
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, op.Name, s.Model.XMLNamespace)
		if out != nil {
			enc := xml.NewEncoder(&buf)
			if err := enc.EncodeElement(out, xml.StartElement{Name: xml.Name{Local: op.Name + "Result"}}); err != nil {
				s.writeError(w, req, Internal(err))
				return
			}
			enc.Flush()
		}
		fmt.Fprintf(&buf, `<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>`, req.ID, op.Name)
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		w.Write(buf.Bytes())
	default:
		s.writeREST(w, req, op, out)
	}
}

// writeREST writes a REST output: aws-tagged members to the status and headers, a raw body
// member as the body, the other members as the JSON or XML body.
func (s *Service) writeREST(w http.ResponseWriter, req *Request, op *Operation, out any) {
	status := op.status
	if out == nil {
		w.WriteHeader(status)
		return
	}
	v := reflect.ValueOf(out)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var raw []byte
	hasRaw := false
	var payload *reflect.StructField
	var payloadValue reflect.Value
	if v.Kind() == reflect.Struct {
		t := v.Type()
		for i := range t.NumField() {
			tag, f := t.Field(i).Tag.Get("aws"), v.Field(i)
			switch {
			case tag == "":
			case tag == "payload":
				sf := t.Field(i)
				payload, payloadValue = &sf, f
			case tag == "status":
				if n := f.Int(); n != 0 {
					status = int(n)
				}
			case tag == "body":
				raw, hasRaw = f.Bytes(), true
			case strings.HasPrefix(tag, "header:"):
				if f.Kind() == reflect.Pointer {
					if f.IsNil() {
						continue
					}
					f = f.Elem()
				}
				if val := fmt.Sprint(f.Interface()); val != "" {
					w.Header().Set(strings.TrimPrefix(tag, "header:"), val)
				}
			}
		}
	}
	if hasRaw {
		w.WriteHeader(status)
		w.Write(raw)
		return
	}
	if payload != nil {
		s.writePayload(w, req, status, *payload, payloadValue)
		return
	}
	var b []byte
	var err error
	if req.Protocol == RESTXML {
		b, err = xml.Marshal(out)
		w.Header().Set("Content-Type", "application/xml")
	} else {
		b, err = json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
	}
	if err != nil {
		s.writeError(w, req, Internal(err))
		return
	}
	w.WriteHeader(status)
	w.Write(b)
}

// writePayload writes an output whose body is one structure member (the model's "payload"). In
// REST-XML the body is that member's element, named by its xml tag (else the member's name) and
// qualified with the model's namespace, as <Distribution xmlns="..."> is; in REST-JSON it is the
// member's JSON. A nil payload is an empty body.
func (s *Service) writePayload(w http.ResponseWriter, req *Request, status int, sf reflect.StructField, f reflect.Value) {
	if f.Kind() == reflect.Pointer && f.IsNil() {
		w.WriteHeader(status)
		return
	}
	var buf bytes.Buffer
	if req.Protocol == RESTXML {
		name, _, _ := strings.Cut(sf.Tag.Get("xml"), ",")
		if name == "" || name == "-" {
			name = sf.Name
		}
		buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		enc := xml.NewEncoder(&buf)
		if err := enc.EncodeElement(f.Interface(), xml.StartElement{Name: xml.Name{Space: s.Model.XMLNamespace, Local: name}}); err != nil {
			s.writeError(w, req, Internal(err))
			return
		}
		enc.Flush()
		w.Header().Set("Content-Type", "text/xml")
	} else {
		b, err := json.Marshal(f.Interface())
		if err != nil {
			s.writeError(w, req, Internal(err))
			return
		}
		buf.Write(b)
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
