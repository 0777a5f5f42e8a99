package protocol

import (
	"encoding"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// maxQueryDepth bounds how deep a query-protocol member name can nest (dots); no AWS input shape
// comes near it, and it keeps indexing a form linear in its size.
const maxQueryDepth = 24

// queryForm is a form with every member-name prefix indexed, so that asking whether a member is
// present costs one lookup, not a scan of the form (which would make a list of n members cost
// n² to decode).
type queryForm struct {
	values   url.Values
	prefixes map[string]struct{}
}

func newQueryForm(values url.Values) queryForm {
	f := queryForm{values: values, prefixes: make(map[string]struct{}, len(values))}
	for k := range values {
		f.prefixes[k] = struct{}{}
		dots := 0
		for i := 0; i < len(k) && dots < maxQueryDepth; i++ {
			if k[i] == '.' {
				f.prefixes[k[:i]] = struct{}{}
				dots++
			}
		}
	}
	return f
}

// has reports whether any member is name or lies under it.
func (f queryForm) has(name string) bool {
	_, ok := f.prefixes[name]
	return ok
}

// DecodeQuery fills v from query-protocol form values, guided by v's type and the json names of
// its struct members (the query protocol names members as JSON does): nested members joined by
// dots, lists as Name.member.N, maps as Name.entry.N.key / .value. Action and Version are the
// envelope's and are ignored.
func DecodeQuery(form url.Values, v any) error {
	return decodeQueryValue(newQueryForm(form), "", reflect.ValueOf(v).Elem(), 0)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func queryName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func decodeQueryValue(form queryForm, name string, v reflect.Value, depth int) error {
	if depth > maxQueryDepth {
		return nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		if !form.values.Has(name) {
			return nil
		}
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(form.values.Get(name)))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !form.has(name) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeQueryValue(form, name, p.Elem(), depth); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if name != "" && !form.has(name) {
			return nil
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			member := strings.Split(f.Tag.Get("json"), ",")[0]
			if member == "-" {
				continue
			}
			if member == "" {
				member = f.Name
			}
			if err := decodeQueryValue(form, queryName(name, member), v.Field(i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if v.Type() == bytesType {
			break
		}
		var items []reflect.Value
		for i := 1; ; i++ {
			item := name + ".member." + strconv.Itoa(i)
			if !form.has(item) {
				break
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeQueryValue(form, item, e, depth+2); err != nil {
				return err
			}
			items = append(items, e)
		}
		if len(items) == 0 {
			if form.values.Has(name) && form.values.Get(name) == "" {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0)) // an explicitly empty list
			}
			return nil
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, e := range items {
			s.Index(i).Set(e)
		}
		v.Set(s)
		return nil
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 1; ; i++ {
			entry := name + ".entry." + strconv.Itoa(i)
			if !form.has(entry) {
				break
			}
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeQueryValue(form, entry+".key", k, depth+3); err != nil {
				return err
			}
			if err := decodeQueryValue(form, entry+".value", e, depth+3); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		if m.Len() > 0 {
			v.Set(m)
		}
		return nil
	}
	if !form.values.Has(name) {
		return nil
	}
	raw := form.values.Get(name)
	if v.Type() == bytesType {
		v.SetBytes([]byte(raw))
		return nil
	}
	if err := setScalar(v, raw, name); err != nil {
		return fmt.Errorf("%w", err)
	}
	return nil
}
