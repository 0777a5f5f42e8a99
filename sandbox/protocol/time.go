package protocol

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Timestamp is a timestamp member as each protocol carries it: epoch seconds in JSON, CBOR tag 1
// epoch seconds in RPC v2 CBOR, ISO 8601 in query and XML. It reads any of those forms.
type Timestamp struct{ time.Time }

func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)), nil
}

func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return t.parse(s)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %.40s: %w", b, err)
	}
	t.Time = epoch(f)
	return nil
}

func epoch(f float64) time.Time {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func (t Timestamp) MarshalCBOR() ([]byte, error) {
	return cborEnc.Marshal(cbor.Tag{Number: 1, Content: float64(t.UnixMilli()) / 1000})
}

func (t *Timestamp) UnmarshalCBOR(b []byte) error {
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
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

func (t Timestamp) MarshalText() ([]byte, error) {
	return []byte(t.UTC().Format("2006-01-02T15:04:05.000Z")), nil
}

func (t *Timestamp) UnmarshalText(b []byte) error { return t.parse(string(b)) }

func (t *Timestamp) parse(s string) error {
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
	return fmt.Errorf("timestamp %.40q is not ISO 8601", s)
}
