package cloudwatch

import (
	"encoding"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

func reflectValue(v any) reflect.Value { return reflect.ValueOf(v).Elem() }

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// hasPrefix reports whether any form key is name or starts with name + ".".
func hasPrefix(form url.Values, name string) bool {
	for k := range form {
		if k == name || strings.HasPrefix(k, name+".") {
			return true
		}
	}
	return false
}

// decodeQueryValue fills v from the form keys under name, guided by v's type and the json names
// of struct fields (the query protocol uses the same member names).
func decodeQueryValue(form url.Values, name string, v reflect.Value) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshaler) {
		if !form.Has(name) {
			return nil
		}
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(form.Get(name)))
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !hasPrefix(form, name) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeQueryValue(form, name, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			member := strings.Split(f.Tag.Get("json"), ",")[0]
			if member == "" || member == "-" {
				member = f.Name
			}
			if err := decodeQueryValue(form, queryName(name, member), v.Field(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		var items []reflect.Value
		for i := 1; ; i++ {
			item := fmt.Sprintf("%s.member.%d", name, i)
			if !hasPrefix(form, item) {
				break
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeQueryValue(form, item, e); err != nil {
				return err
			}
			items = append(items, e)
		}
		if len(items) == 0 {
			if form.Has(name) && form.Get(name) == "" {
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
			entry := fmt.Sprintf("%s.entry.%d", name, i)
			if !hasPrefix(form, entry) {
				break
			}
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeQueryValue(form, entry+".key", k); err != nil {
				return err
			}
			if err := decodeQueryValue(form, entry+".value", e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		if m.Len() > 0 {
			v.Set(m)
		}
		return nil
	}
	if !form.Has(name) {
		return nil
	}
	raw := form.Get(name)
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%s: %q is not a boolean", name, raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", name, raw)
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, raw)
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("%s: cannot decode into %s", name, v.Type())
	}
	return nil
}
