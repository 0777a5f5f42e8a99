package cloudwatch

import (
	"encoding/xml"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// apiError is a CloudWatch error: the model's shape name (what JSON and CBOR clients match); the
// query-protocol code (what query clients and the x-amzn-query-error header carry), the status
// and the fault come from the model.
type apiError = protocol.Error

func invalidParameter(format string, args ...any) *apiError {
	return protocol.Errorf("InvalidParameterValueException", format, args...)
}

func missingParameter(name string) *apiError {
	return protocol.Errorf("MissingRequiredParameterException", "The parameter %s is required.", name)
}

func resourceNotFound(format string, args ...any) *apiError {
	return protocol.Errorf("ResourceNotFound", format, args...)
}

func invalidNextToken() *apiError {
	return protocol.Errorf("InvalidNextToken", "The service returned an invalid NextToken.")
}

func validationError(msg string) *apiError {
	return &protocol.Error{Code: "ValidationError", Status: 400, Message: msg}
}

// ts is a timestamp as each protocol carries it.
type ts = protocol.Timestamp

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
