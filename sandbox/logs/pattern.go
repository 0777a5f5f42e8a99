package logs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// Filter patterns, as CloudWatch Logs documents them ("Filter pattern syntax for metric filters,
// subscription filters, filter log events, and Live Tail"):
//
//   - terms: ERROR Exception (all must appear, case-sensitive substrings); "quoted phrase";
//     ?ERROR ?WARN (any; each ? starts an alternative whose following plain terms are ANDed with
//     it); -term or - "term" (must not appear); %regex% (RE2, without groups).
//   - JSON: { $.a.b[0] = "x" } with = != < > <= >=, * wildcards at either end of a string,
//     %regex%, numbers, IS NULL, IS TRUE, IS FALSE, EXISTS, NOT EXISTS, && || and parentheses.
//   - space-delimited: [ip, user, ..., status = 4* || status = 5*, bytes > 1000], where "..."
//     stands for any number of fields and a field's condition may name other fields.
//
// An empty pattern matches every event.

// pattern is a compiled filter pattern.
type pattern interface {
	match(msg string) bool
}

type patternError struct{ msg string }

func (e *patternError) Error() string { return e.msg }

func badPattern(format string, args ...any) error {
	return &patternError{msg: fmt.Sprintf(format, args...)}
}

// compilePattern parses a filter pattern.
func compilePattern(src string) (pattern, error) {
	s := strings.TrimSpace(src)
	switch {
	case s == "":
		return matchAll{}, nil
	case s[0] == '{':
		return compileJSONPattern(s)
	case s[0] == '[':
		return compileDelimited(s)
	}
	return compileTerms(s)
}

type matchAll struct{}

func (matchAll) match(string) bool { return true }

// ---- scanning ----

type scanner struct {
	src string
	pos int
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.src) && isSpace(sc.src[sc.pos]) {
		sc.pos++
	}
}

func (sc *scanner) eof() bool { return sc.pos >= len(sc.src) }

func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.src[sc.pos]
}

func (sc *scanner) hasPrefix(p string) bool { return strings.HasPrefix(sc.src[sc.pos:], p) }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// quoted reads a double-quoted string starting at the opening quote; \" and \\ are escapes.
func (sc *scanner) quoted() (string, error) {
	start := sc.pos
	sc.pos++ // opening quote
	var b strings.Builder
	for !sc.eof() {
		c := sc.src[sc.pos]
		switch {
		case c == '\\' && sc.pos+1 < len(sc.src) && (sc.src[sc.pos+1] == '"' || sc.src[sc.pos+1] == '\\'):
			b.WriteByte(sc.src[sc.pos+1])
			sc.pos += 2
		case c == '"':
			sc.pos++
			return b.String(), nil
		default:
			b.WriteByte(c)
			sc.pos++
		}
	}
	return "", badPattern("Invalid filter pattern: unterminated quoted string starting at character %d: %s", start+1, sc.src[start:])
}

// regex reads %...% starting at the opening percent sign.
func (sc *scanner) regex() (*regexp.Regexp, error) {
	start := sc.pos
	end := strings.IndexByte(sc.src[sc.pos+1:], '%')
	if end < 0 {
		return nil, badPattern("Invalid filter pattern: unterminated regular expression starting at character %d: %s", start+1, sc.src[start:])
	}
	body := sc.src[sc.pos+1 : sc.pos+1+end]
	sc.pos += end + 2
	return compileRegex(body)
}

func compileRegex(body string) (*regexp.Regexp, error) {
	if body == "" {
		return nil, badPattern("Invalid filter pattern: empty regular expression %%%%")
	}
	if strings.ContainsAny(body, "()") {
		return nil, badPattern("Invalid regular expression %%%s%%: the () operator is not supported", body)
	}
	re, err := regexp.Compile(body)
	if err != nil {
		return nil, badPattern("Invalid regular expression %%%s%%: %v", body, err)
	}
	return re, nil
}

// ---- unstructured terms ----

type term struct {
	text   string
	re     *regexp.Regexp
	negate bool
}

func (t term) found(msg string) bool {
	if t.re != nil {
		return t.re.MatchString(msg)
	}
	return strings.Contains(msg, t.text)
}

// termsPattern is an OR of alternatives, each an AND of terms.
type termsPattern struct{ alts [][]term }

func (p termsPattern) match(msg string) bool {
	for _, alt := range p.alts {
		ok := true
		for _, t := range alt {
			if t.found(msg) == t.negate {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func compileTerms(src string) (pattern, error) {
	sc := &scanner{src: src}
	var alts [][]term
	var cur []term
	started := false
	for {
		sc.skipSpace()
		if sc.eof() {
			break
		}
		or, negate := false, false
		for !sc.eof() && (sc.peek() == '?' || sc.peek() == '-') {
			if sc.peek() == '?' {
				or = true
			} else {
				negate = !negate
			}
			sc.pos++
			sc.skipSpace()
		}
		if sc.eof() {
			return nil, badPattern("Invalid filter pattern: %q ends with an operator and no term", src)
		}
		var t term
		switch c := sc.peek(); c {
		case '"':
			s, err := sc.quoted()
			if err != nil {
				return nil, err
			}
			if s == "" {
				return nil, badPattern("Invalid filter pattern: empty quoted term in %q", src)
			}
			t.text = s
		case '%':
			re, err := sc.regex()
			if err != nil {
				return nil, err
			}
			t.re = re
		case '{', '}', '[', ']':
			return nil, badPattern("Invalid character(s) in term %q: %q must start the pattern (JSON and space-delimited patterns) or be quoted", src[sc.pos:], string(c))
		default:
			start := sc.pos
			for !sc.eof() && !isSpace(sc.peek()) && sc.peek() != '"' {
				sc.pos++
			}
			t.text = sc.src[start:sc.pos]
			if strings.ContainsAny(t.text, "{}[]") {
				return nil, badPattern("Invalid character(s) in term %q", t.text)
			}
		}
		t.negate = negate
		if or && started {
			alts = append(alts, cur)
			cur = nil
		}
		started = true
		cur = append(cur, t)
	}
	alts = append(alts, cur)
	return termsPattern{alts: alts}, nil
}

// ---- values shared by JSON and space-delimited conditions ----

type compareOp int

const (
	opEq compareOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

var opNames = map[compareOp]string{opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">="}

// literal is the right-hand side of a comparison.
type literal struct {
	text     string
	quoted   bool
	re       *regexp.Regexp
	num      float64
	isNum    bool
	any      bool // "*" alone
	prefix   bool // "*abc": matches what ends with abc
	suffix   bool // "abc*": matches what starts with abc
	wildBody string
}

func newLiteral(text string, quoted bool) literal {
	l := literal{text: text, quoted: quoted}
	if text == "*" {
		l.any = true
		return l
	}
	if !quoted {
		if f, err := strconv.ParseFloat(text, 64); err == nil && !strings.ContainsAny(text, "xXpP_") {
			l.num, l.isNum = f, true
		}
	}
	body := text
	if strings.HasPrefix(body, "*") {
		l.prefix, body = true, body[1:]
	}
	if strings.HasSuffix(body, "*") && body != "" {
		l.suffix, body = true, body[:len(body)-1]
	}
	l.wildBody = body
	return l
}

// matchString says whether s equals the literal, honouring wildcards at either end (a * inside a
// string is a literal asterisk) and regular expressions.
func (l literal) matchString(s string) bool {
	switch {
	case l.any:
		return true
	case l.re != nil:
		return l.re.MatchString(s)
	case l.prefix && l.suffix:
		return strings.Contains(s, l.wildBody)
	case l.prefix:
		return strings.HasSuffix(s, l.wildBody)
	case l.suffix:
		return strings.HasPrefix(s, l.wildBody)
	}
	return s == l.text
}

// compare applies op to a value that is either a number (isNum) or a string.
func compare(op compareOp, l literal, s string, num float64, isNum bool) bool {
	if l.isNum {
		if !isNum {
			if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				num, isNum = f, true
			}
		}
		if isNum {
			switch op {
			case opEq:
				return num == l.num
			case opNe:
				return num != l.num
			case opLt:
				return num < l.num
			case opLe:
				return num <= l.num
			case opGt:
				return num > l.num
			case opGe:
				return num >= l.num
			}
		}
	}
	switch op {
	case opEq:
		return l.matchString(s)
	case opNe:
		return !l.matchString(s)
	}
	return false // ordering needs numbers on both sides
}

func (sc *scanner) compareOp() (compareOp, bool) {
	for _, c := range []struct {
		s  string
		op compareOp
	}{{"!=", opNe}, {"<=", opLe}, {">=", opGe}, {"=", opEq}, {"<", opLt}, {">", opGt}} {
		if sc.hasPrefix(c.s) {
			sc.pos += len(c.s)
			return c.op, true
		}
	}
	return 0, false
}

// literal reads a comparison's right-hand side: "quoted", %regex%, or a bare word that ends at
// whitespace, a closing bracket or brace, a comma, or && / ||.
func (sc *scanner) literal(stops string) (literal, error) {
	sc.skipSpace()
	switch sc.peek() {
	case 0:
		return literal{}, badPattern("Invalid filter pattern: a comparison in %q has no value", sc.src)
	case '"':
		s, err := sc.quoted()
		if err != nil {
			return literal{}, err
		}
		return newLiteral(s, true), nil
	case '%':
		re, err := sc.regex()
		if err != nil {
			return literal{}, err
		}
		return literal{re: re}, nil
	}
	start := sc.pos
	for !sc.eof() && !isSpace(sc.peek()) && !strings.ContainsRune(stops, rune(sc.peek())) && !sc.hasPrefix("&&") && !sc.hasPrefix("||") {
		sc.pos++
	}
	if sc.pos == start {
		return literal{}, badPattern("Invalid filter pattern: a comparison in %q has no value at character %d", sc.src, start+1)
	}
	return newLiteral(sc.src[start:sc.pos], false), nil
}

// ---- JSON patterns ----

type jsonExpr interface {
	eval(doc any) bool
}

type jsonAnd []jsonExpr
type jsonOr []jsonExpr

func (a jsonAnd) eval(doc any) bool {
	for _, e := range a {
		if !e.eval(doc) {
			return false
		}
	}
	return true
}

func (o jsonOr) eval(doc any) bool {
	for _, e := range o {
		if e.eval(doc) {
			return true
		}
	}
	return false
}

type pathStep struct {
	key   string
	index int // -1 for a key
}

type jsonCond struct {
	path []pathStep
	kind string // "cmp", "null", "true", "false", "exists", "notexists"
	op   compareOp
	lit  literal
}

func (c jsonCond) eval(doc any) bool {
	v, ok := lookup(doc, c.path)
	switch c.kind {
	case "exists":
		return ok
	case "notexists":
		return !ok
	case "null":
		return ok && v == nil
	case "true", "false":
		b, isBool := v.(bool)
		return ok && isBool && b == (c.kind == "true")
	}
	if !ok {
		return false
	}
	switch x := v.(type) {
	case string:
		return compare(c.op, c.lit, x, 0, false)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return false
		}
		if c.lit.isNum || c.lit.any {
			return compare(c.op, c.lit, x.String(), f, true)
		}
		return compare(c.op, c.lit, x.String(), 0, false)
	case bool:
		// A boolean is a value node; it equals "*" or its own spelling.
		return compare(c.op, c.lit, strconv.FormatBool(x), 0, false)
	}
	return false // null, arrays and objects are not value nodes
}

func lookup(doc any, path []pathStep) (any, bool) {
	cur := doc
	for _, st := range path {
		if st.index >= 0 {
			arr, ok := cur.([]any)
			if !ok || st.index >= len(arr) {
				return nil, false
			}
			cur = arr[st.index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[st.key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

type jsonPattern struct{ expr jsonExpr }

func (p jsonPattern) match(msg string) bool {
	s := strings.TrimSpace(msg)
	if len(s) == 0 || s[0] != '{' && s[0] != '[' {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return false
	}
	return p.expr.eval(doc)
}

func compileJSONPattern(src string) (pattern, error) {
	if !strings.HasSuffix(src, "}") {
		return nil, badPattern("Invalid filter pattern: a JSON pattern must end with }: %s", src)
	}
	sc := &scanner{src: src, pos: 1}
	e, err := parseJSONOr(sc)
	if err != nil {
		return nil, err
	}
	sc.skipSpace()
	if sc.peek() != '}' || sc.pos != len(src)-1 {
		return nil, badPattern("Invalid filter pattern: unexpected %q at character %d of %s", sc.src[sc.pos:], sc.pos+1, src)
	}
	return jsonPattern{expr: e}, nil
}

func parseJSONOr(sc *scanner) (jsonExpr, error) {
	var or jsonOr
	for {
		e, err := parseJSONAnd(sc)
		if err != nil {
			return nil, err
		}
		or = append(or, e)
		sc.skipSpace()
		if !sc.hasPrefix("||") {
			break
		}
		sc.pos += 2
	}
	if len(or) == 1 {
		return or[0], nil
	}
	return or, nil
}

func parseJSONAnd(sc *scanner) (jsonExpr, error) {
	var and jsonAnd
	for {
		e, err := parseJSONPrimary(sc)
		if err != nil {
			return nil, err
		}
		and = append(and, e)
		sc.skipSpace()
		if !sc.hasPrefix("&&") {
			break
		}
		sc.pos += 2
	}
	if len(and) == 1 {
		return and[0], nil
	}
	return and, nil
}

func parseJSONPrimary(sc *scanner) (jsonExpr, error) {
	sc.skipSpace()
	if sc.peek() == '(' {
		sc.pos++
		e, err := parseJSONOr(sc)
		if err != nil {
			return nil, err
		}
		sc.skipSpace()
		if sc.peek() != ')' {
			return nil, badPattern("Invalid filter pattern: missing ) at character %d of %s", sc.pos+1, sc.src)
		}
		sc.pos++
		return e, nil
	}
	path, err := parseSelector(sc)
	if err != nil {
		return nil, err
	}
	sc.skipSpace()
	word := func() string {
		start := sc.pos
		for !sc.eof() && (unicode.IsLetter(rune(sc.peek()))) {
			sc.pos++
		}
		return strings.ToUpper(sc.src[start:sc.pos])
	}
	save := sc.pos
	switch word() {
	case "IS":
		sc.skipSpace()
		switch w := word(); w {
		case "NULL":
			return jsonCond{path: path, kind: "null"}, nil
		case "TRUE", "FALSE":
			return jsonCond{path: path, kind: strings.ToLower(w)}, nil
		default:
			return nil, badPattern("Invalid filter pattern: IS must be followed by NULL, TRUE or FALSE in %s", sc.src)
		}
	case "NOT":
		sc.skipSpace()
		if word() != "EXISTS" {
			return nil, badPattern("Invalid filter pattern: NOT must be followed by EXISTS in %s", sc.src)
		}
		return jsonCond{path: path, kind: "notexists"}, nil
	case "EXISTS":
		return jsonCond{path: path, kind: "exists"}, nil
	}
	sc.pos = save
	op, ok := sc.compareOp()
	if !ok {
		return nil, badPattern("Invalid filter pattern: expected one of = != < > <= >= IS NOT EXISTS at character %d of %s", sc.pos+1, sc.src)
	}
	lit, err := sc.literal(")}")
	if err != nil {
		return nil, err
	}
	if op != opEq && op != opNe && !lit.isNum {
		return nil, badPattern("Invalid filter pattern: %s needs a number, not %q, in %s", opNames[op], lit.text, sc.src)
	}
	return jsonCond{path: path, kind: "cmp", op: op, lit: lit}, nil
}

// parseSelector reads $.name.other[0].x
func parseSelector(sc *scanner) ([]pathStep, error) {
	if sc.peek() != '$' {
		return nil, badPattern("Invalid filter pattern: expected a selector starting with $ at character %d of %s", sc.pos+1, sc.src)
	}
	sc.pos++
	var path []pathStep
	for !sc.eof() {
		switch sc.peek() {
		case '.':
			sc.pos++
			start := sc.pos
			for !sc.eof() && isSelectorChar(sc.peek()) {
				sc.pos++
			}
			if sc.pos == start {
				return nil, badPattern("Invalid filter pattern: empty property name at character %d of %s", start+1, sc.src)
			}
			path = append(path, pathStep{key: sc.src[start:sc.pos], index: -1})
		case '[':
			end := strings.IndexByte(sc.src[sc.pos:], ']')
			if end < 0 {
				return nil, badPattern("Invalid filter pattern: unterminated [ at character %d of %s", sc.pos+1, sc.src)
			}
			n, err := strconv.Atoi(sc.src[sc.pos+1 : sc.pos+end])
			if err != nil || n < 0 {
				return nil, badPattern("Invalid filter pattern: array index %q is not a number in %s", sc.src[sc.pos+1:sc.pos+end], sc.src)
			}
			if len(path) == 0 {
				return nil, badPattern("Invalid filter pattern: an array index must follow a property in %s", sc.src)
			}
			path = append(path, pathStep{index: n})
			sc.pos += end + 1
		default:
			if len(path) == 0 {
				return nil, badPattern("Invalid filter pattern: a selector must name a property ($.name) in %s", sc.src)
			}
			return path, nil
		}
	}
	return path, nil
}

func isSelectorChar(c byte) bool {
	return c == '_' || c == '-' || c == '@' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// ---- space-delimited patterns ----

type fieldCond struct {
	name string
	op   compareOp
	lit  literal
}

// slotExpr is a field's condition: an OR of ANDs of comparisons. A comparison may name another
// field; one naming no field of the pattern is false.
type slotExpr [][]fieldCond

type slot struct {
	name     string
	ellipsis bool
	expr     slotExpr
}

type delimitedPattern struct {
	slots []slot
	names map[string]bool
	// local says every condition names its own slot's field (the usual case): then each slot is
	// judged as it is bound, and whether slots si… fit fields fi… depends on si and fi alone.
	local bool
}

func compileDelimited(src string) (pattern, error) {
	if !strings.HasSuffix(src, "]") {
		return nil, badPattern("Invalid filter pattern: a space-delimited pattern must end with ]: %s", src)
	}
	sc := &scanner{src: src[:len(src)-1], pos: 1}
	p := delimitedPattern{names: map[string]bool{}}
	if strings.TrimSpace(sc.src[1:]) == "" {
		return nil, badPattern("Invalid filter pattern: %s names no fields", src)
	}
	for {
		sc.skipSpace()
		if sc.eof() || sc.peek() == ',' {
			// An empty field, as in [..., status_code,]: any one field, unnamed.
			p.slots = append(p.slots, slot{})
		} else if sc.hasPrefix("...") {
			sc.pos += 3
			// Two ellipses in a row stretch as one does.
			if n := len(p.slots); n == 0 || !p.slots[n-1].ellipsis {
				p.slots = append(p.slots, slot{ellipsis: true})
			}
		} else {
			name, err := fieldName(sc)
			if err != nil {
				return nil, err
			}
			if p.names[name] {
				return nil, badPattern("Invalid filter pattern: the field %s is named twice in %s", name, src)
			}
			p.names[name] = true
			s := slot{name: name}
			sc.skipSpace()
			if !sc.eof() && sc.peek() != ',' {
				if s.expr, err = parseSlotExpr(sc, name); err != nil {
					return nil, err
				}
			}
			p.slots = append(p.slots, s)
		}
		sc.skipSpace()
		if sc.eof() {
			break
		}
		if sc.peek() != ',' {
			return nil, badPattern("Invalid filter pattern: expected , at character %d of %s", sc.pos+1, src)
		}
		sc.pos++
	}
	p.local = true
	for _, s := range p.slots {
		for _, and := range s.expr {
			for _, c := range and {
				p.local = p.local && c.name == s.name
			}
		}
	}
	return p, nil
}

func fieldName(sc *scanner) (string, error) {
	start := sc.pos
	for !sc.eof() && (isSelectorChar(sc.peek()) || sc.peek() == '$' || sc.peek() == '.') {
		sc.pos++
	}
	if sc.pos == start {
		return "", badPattern("Invalid filter pattern: expected a field name at character %d of %s]", start+1, sc.src)
	}
	return sc.src[start:sc.pos], nil
}

// parseSlotExpr reads "= 4* && bytes > 1000 || other = x": the first comparison's field is the
// slot's own.
func parseSlotExpr(sc *scanner, self string) (slotExpr, error) {
	var or slotExpr
	var and []fieldCond
	name := self
	for {
		sc.skipSpace()
		if name == "" {
			n, err := fieldName(sc)
			if err != nil {
				return nil, err
			}
			name = n
			sc.skipSpace()
		}
		op, ok := sc.compareOp()
		if !ok {
			return nil, badPattern("Invalid filter pattern: expected one of = != < > <= >= after %s at character %d of %s]", name, sc.pos+1, sc.src)
		}
		lit, err := sc.literal(",")
		if err != nil {
			return nil, err
		}
		if op != opEq && op != opNe && !lit.isNum {
			return nil, badPattern("Invalid filter pattern: %s needs a number, not %q, in %s]", opNames[op], lit.text, sc.src)
		}
		and = append(and, fieldCond{name: name, op: op, lit: lit})
		name = ""
		sc.skipSpace()
		switch {
		case sc.hasPrefix("&&"):
			sc.pos += 2
		case sc.hasPrefix("||"):
			sc.pos += 2
			or = append(or, and)
			and = nil
		default:
			return append(or, and), nil
		}
	}
}

// splitFields splits an event into space-delimited fields; "quoted" and [bracketed] text are one
// field each, without their delimiters.
func splitFields(msg string) []string {
	msg = strings.TrimRight(msg, "\r\n")
	var out []string
	i := 0
	for i < len(msg) {
		for i < len(msg) && isSpace(msg[i]) {
			i++
		}
		if i >= len(msg) {
			break
		}
		switch msg[i] {
		case '"', '[':
			closer := byte('"')
			if msg[i] == '[' {
				closer = ']'
			}
			if end := strings.IndexByte(msg[i+1:], closer); end >= 0 {
				out = append(out, msg[i+1:i+1+end])
				i += end + 2
				continue
			}
		}
		start := i
		for i < len(msg) && !isSpace(msg[i]) {
			i++
		}
		out = append(out, msg[start:i])
	}
	return out
}

func (p delimitedPattern) match(msg string) bool {
	fields := splitFields(msg)
	if p.local {
		return p.alignLocal(fields, 0, 0, map[[2]int]bool{})
	}
	bound := map[string]string{}
	budget := alignBudget
	return p.align(fields, 0, 0, bound, &budget)
}

// alignBudget bounds the bindings tried for one line when a condition names another slot's
// field, so that no pattern can hold the service for long (trying every stretch of k ellipses
// over n fields takes about n^k steps); a line that needs more does not match.
const alignBudget = 100_000

// alignLocal says whether slots si… fit fields fi…, when every condition is its own slot's:
// each (si, fi) is worked out once, so a match takes time in proportion to slots × fields
// however many ellipses the pattern has (trying every stretch of each would take fields^ellipses).
func (p delimitedPattern) alignLocal(fields []string, si, fi int, memo map[[2]int]bool) bool {
	if si == len(p.slots) {
		return fi == len(fields)
	}
	key := [2]int{si, fi}
	if ok, seen := memo[key]; seen {
		return ok
	}
	s := p.slots[si]
	var ok bool
	switch {
	case s.ellipsis:
		// It stretches over no more fields, or over one more.
		ok = p.alignLocal(fields, si+1, fi, memo) || fi < len(fields) && p.alignLocal(fields, si, fi+1, memo)
	case fi < len(fields):
		ok = (len(s.expr) == 0 || s.expr.holds(map[string]string{s.name: fields[fi]})) && p.alignLocal(fields, si+1, fi+1, memo)
	}
	memo[key] = ok
	return ok
}

// align binds slots to fields, trying every way the ellipses can stretch, and checks the
// conditions once every slot is bound.
func (p delimitedPattern) align(fields []string, si, fi int, bound map[string]string, budget *int) bool {
	if *budget--; *budget < 0 {
		return false
	}
	if si == len(p.slots) {
		return fi == len(fields) && p.check(bound)
	}
	s := p.slots[si]
	if s.ellipsis {
		for k := fi; k <= len(fields); k++ {
			if p.align(fields, si+1, k, bound, budget) {
				return true
			}
		}
		return false
	}
	if fi >= len(fields) {
		return false
	}
	if s.name == "" {
		return p.align(fields, si+1, fi+1, bound, budget)
	}
	bound[s.name] = fields[fi]
	ok := p.align(fields, si+1, fi+1, bound, budget)
	delete(bound, s.name)
	return ok
}

func (p delimitedPattern) check(bound map[string]string) bool {
	for _, s := range p.slots {
		if len(s.expr) != 0 && !s.expr.holds(bound) {
			return false
		}
	}
	return true
}

// holds says whether the condition holds of the fields bound by name.
func (e slotExpr) holds(bound map[string]string) bool {
	for _, and := range e {
		all := true
		for _, c := range and {
			v, present := bound[c.name]
			if !present || !compare(c.op, c.lit, v, 0, false) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
