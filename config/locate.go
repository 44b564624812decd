package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/hotline12345/hotline/ivr"
)

// part is one step of a field path: a mapping key, or (index >= 0) a sequence index.
type part struct {
	key   string
	index int
}

// pathNode is one field of the parsed document. The tree is keyed by path
// parts, so a map key with a dot in it ("case.entry") is one part, not two.
type pathNode struct {
	part     part
	parent   *pathNode
	line     int // line of the key (or of the "-" of a sequence entry); 0 for the root
	children []*pathNode
	byPart   map[part]*pathNode
}

// child returns the child for p, creating it at line if new (a duplicate key
// keeps the line of its first occurrence).
func (n *pathNode) child(p part, line int) *pathNode {
	if c, ok := n.byPart[p]; ok {
		return c
	}
	c := &pathNode{part: p, parent: n, line: line}
	if n.byPart == nil {
		n.byPart = map[part]*pathNode{}
	}
	n.byPart[p] = c
	n.children = append(n.children, c)
	return c
}

// field is the path of n as used in messages: "trunks[0].codecs[1]", "menus.case.entry.timeout".
func (n *pathNode) field() string {
	if n == nil || n.parent == nil {
		return ""
	}
	return joinField(n.parent.field(), n.part)
}

func joinField(parent string, p part) string {
	switch {
	case p.index >= 0:
		return parent + "[" + strconv.Itoa(p.index) + "]"
	case parent == "":
		return p.key
	default:
		return parent + "." + p.key
	}
}

// lookup finds the node named by a field path as written by validation,
// matching it against the keys that actually occur (so dotted keys resolve),
// and falls back to the deepest existing parent.
func (n *pathNode) lookup(field string) *pathNode {
	best, bestRest := n, len(field)
	budget := 10000 // keys that prefix one another make this a search; keep it bounded
	var match func(n *pathNode, s string)
	match = func(n *pathNode, s string) {
		if len(s) < bestRest {
			best, bestRest = n, len(s)
		}
		for _, c := range n.children {
			if bestRest == 0 || budget <= 0 {
				return
			}
			budget--
			seg := joinField("", c.part)
			if c.part.index < 0 && n.parent != nil {
				seg = "." + seg
			}
			rest, ok := strings.CutPrefix(s, seg)
			if ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
				match(c, rest)
			}
		}
	}
	match(n, field)
	return best
}

// pos identifies a token; the decoder re-parses the same bytes, so its
// tokens have the same positions as ours.
type pos struct{ line, col int }

func posOf(tk *token.Token) (pos, bool) {
	if tk == nil || tk.Position == nil {
		return pos{}, false
	}
	return pos{tk.Position.Line, tk.Position.Column}, true
}

func lineOfToken(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

// locator is built by one walk over the parsed document: the field tree with
// key lines, the field of every token (for decoder errors), the anchors, and
// the problems found on the way (YAML tags).
type locator struct {
	root     *pathNode
	byKey    map[pos]*pathNode // key token → the field it names
	byNode   map[pos]*pathNode // token of a value node → the field holding it
	anchors  map[string]ast.Node
	problems []*Error
}

func newLocator(body ast.Node) *locator {
	l := &locator{
		root:    &pathNode{part: part{index: -1}},
		byKey:   map[pos]*pathNode{},
		byNode:  map[pos]*pathNode{},
		anchors: map[string]ast.Node{},
	}
	l.walk(body, l.root)
	return l
}

// lineOf is the key line of field (or of its nearest parent in the document).
func (l *locator) lineOf(field string) int { return l.root.lookup(field).line }

func (l *locator) walk(n ast.Node, at *pathNode) {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return
	}
	if p, ok := posOf(n.GetToken()); ok {
		if _, seen := l.byNode[p]; !seen {
			l.byNode[p] = at
		}
	}
	switch n := n.(type) {
	case *ast.TagNode:
		line := at.line
		if line == 0 {
			line = lineOfToken(n.Start)
		}
		l.problems = append(l.problems, &Error{Line: line, Field: at.field(), Problem: "YAML tags are not supported"})
		l.walk(n.Value, at)
	case *ast.AnchorNode:
		if n.Name != nil {
			if tk := n.Name.GetToken(); tk != nil {
				l.anchors[tk.Value] = n.Value
			}
		}
		l.walk(n.Value, at)
	case *ast.MappingKeyNode:
		l.walk(n.Value, at)
	case *ast.MappingNode:
		for _, mv := range n.Values {
			l.pair(mv, at)
		}
	case *ast.MappingValueNode:
		l.pair(n, at)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			line := 0
			if i < len(n.Entries) && n.Entries[i] != nil {
				line = lineOfToken(n.Entries[i].Start)
			}
			if line == 0 && v != nil && !reflect.ValueOf(v).IsNil() {
				line = lineOfToken(v.GetToken())
			}
			l.walk(v, at.child(part{index: i}, line))
		}
	}
}

func (l *locator) pair(mv *ast.MappingValueNode, at *pathNode) {
	if mv == nil {
		return
	}
	var key ast.Node = mv.Key
	line := lineOfToken(mv.Start)
	var keyTok *token.Token
	if key != nil && !reflect.ValueOf(key).IsNil() {
		keyTok = key.GetToken()
		if l := lineOfToken(keyTok); l > 0 {
			line = l
		}
	}
	c := at.child(part{key: keyText(key), index: -1}, line)
	if p, ok := posOf(keyTok); ok {
		if _, seen := l.byKey[p]; !seen {
			l.byKey[p] = c
		}
	}
	if key != nil && !reflect.ValueOf(key).IsNil() {
		l.walk(key, c) // tags and anchors on keys
	}
	l.walk(mv.Value, c)
}

// keyText is a mapping key as the decoder sees it (without quotes).
func keyText(n ast.Node) string {
	for {
		switch k := n.(type) {
		case nil:
			return ""
		case *ast.MappingKeyNode:
			n = k.Value
			continue
		case *ast.TagNode:
			n = k.Value
			continue
		case *ast.AnchorNode:
			n = k.Value
			continue
		case *ast.StringNode:
			return k.Value
		}
		if reflect.ValueOf(n).IsNil() {
			return ""
		}
		if tk := n.GetToken(); tk != nil {
			return tk.Value
		}
		return n.String()
	}
}

var durationType = reflect.TypeFor[ivr.Duration]()

// checkText walks the document along the Go type t and checks every value of
// a text-decoded type (ivr.Duration): the decoder reports those errors without
// a position. Values reached through an alias are reported at the alias's line.
type textChecker struct {
	l       *locator
	budget  int // node visits left: aliases and merge keys can multiply the walk
	active  map[string]bool
	results []*Error
}

func (l *locator) checkText(body ast.Node) []*Error {
	tc := &textChecker{l: l, budget: 100000, active: map[string]bool{}}
	tc.check(body, reflect.TypeFor[Config](), "", 0, false)
	return tc.results
}

func (tc *textChecker) check(n ast.Node, t reflect.Type, field string, line int, viaAlias bool) {
	if tc.budget--; tc.budget < 0 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for {
		if n == nil || reflect.ValueOf(n).IsNil() {
			return
		}
		switch m := n.(type) {
		case *ast.TagNode:
			n = m.Value
			continue
		case *ast.AnchorNode:
			n = m.Value
			continue
		case *ast.AliasNode:
			name := ""
			if m.Value != nil && !reflect.ValueOf(m.Value).IsNil() {
				if tk := m.Value.GetToken(); tk != nil {
					name = tk.Value
				}
			}
			target, ok := tc.l.anchors[name]
			if !ok || tc.active[name] {
				return
			}
			tc.active[name] = true
			defer delete(tc.active, name)
			n, viaAlias = target, true
			continue
		}
		break
	}
	if t == durationType {
		problem := ""
		switch n.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
			problem = "want a duration such as 30s, got a mapping"
		case *ast.SequenceNode:
			problem = "want a duration such as 30s, got a list"
		default:
			var d ivr.Duration
			if err := safely(func() error { return yaml.NodeToValue(n, &d) }); err != nil {
				var ye yaml.Error
				if errors.As(err, &ye) {
					problem = ye.GetMessage()
				} else {
					problem = err.Error()
				}
			}
		}
		if problem != "" {
			tc.results = append(tc.results, &Error{Line: line, Field: field, Problem: problem})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		for _, mv := range mappingValues(n) {
			if mv.Key != nil && mv.Key.Type() == ast.MergeKeyType {
				tc.merge(mv.Value, t, field, line, viaAlias)
				continue
			}
			key := keyText(mv.Key)
			var ft reflect.Type
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if f, ok := structField(t, key); ok {
				ft = f.Type
			} else {
				continue // unknown field: the decoder reports it
			}
			kl := line
			if !viaAlias {
				if mv.Key != nil {
					kl = lineOfToken(mv.Key.GetToken())
				}
			}
			tc.check(mv.Value, ft, joinField(field, part{key: key, index: -1}), kl, viaAlias)
		}
	case reflect.Slice, reflect.Array:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			return
		}
		for i, v := range seq.Values {
			el := line
			if !viaAlias {
				if i < len(seq.Entries) && seq.Entries[i] != nil {
					el = lineOfToken(seq.Entries[i].Start)
				} else if v != nil && !reflect.ValueOf(v).IsNil() {
					el = lineOfToken(v.GetToken())
				}
			}
			tc.check(v, t.Elem(), joinField(field, part{index: i}), el, viaAlias)
		}
	}
}

// merge checks the value of a "<<" key: a mapping, an alias, or a list of them.
func (tc *textChecker) merge(n ast.Node, t reflect.Type, field string, line int, viaAlias bool) {
	if seq, ok := n.(*ast.SequenceNode); ok {
		for _, v := range seq.Values {
			tc.check(v, t, field, line, viaAlias)
		}
		return
	}
	tc.check(n, t, field, line, viaAlias)
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

// structField finds the field of struct t with the YAML name key.
func structField(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if f.IsExported() && name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// safely runs a go-yaml call, turning a panic in it into an error
// (goccy/go-yaml#735 and its kin must not crash start-up).
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("YAML decoder failure (%v)", r)
		}
	}()
	return f()
}

// decodeError turns a decoder error into `file:line: field: problem`, finding
// the field from the position of the token the decoder names.
func (l *locator) decodeError(name string, err error) *Error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Error{File: name, Problem: err.Error()}
	}
	e := &Error{File: name, Problem: ye.GetMessage()}
	tk := ye.GetToken()
	p, ok := posOf(tk)
	if !ok {
		return e
	}
	e.Line = tk.Position.Line
	first, second := l.byNode, l.byKey
	var unknown *yaml.UnknownFieldError
	var dup *yaml.DuplicateKeyError
	if errors.As(err, &unknown) || errors.As(err, &dup) {
		first, second = l.byKey, l.byNode
	}
	at, found := first[p]
	if !found {
		at, found = second[p]
	}
	if found && at.parent != nil {
		e.Field = at.field()
		if at.line > 0 {
			e.Line = at.line
		}
	}
	e.Problem = operatorWords(err, ye, tk)
	return e
}

// operatorWords rewrites decoder messages that name Go types.
func operatorWords(err error, ye yaml.Error, tk *token.Token) string {
	var te *yaml.TypeError
	var oe *yaml.OverflowError
	var ue *yaml.UnexpectedNodeTypeError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("want %s, got %s", describeType(te.DstType), describeValue(te.SrcType, tk))
	case errors.As(err, &oe):
		return fmt.Sprintf("number %s is out of range", oe.SrcNum)
	case errors.As(err, &ue):
		return fmt.Sprintf("want %s, got %s", describeNodeType(ue.Expected, nil), describeNodeType(ue.Actual, tk))
	}
	return ye.GetMessage()
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a single value"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value)"
	}
	return "another kind of value"
}

func describeValue(src reflect.Type, tk *token.Token) string {
	if src != nil {
		switch src.Kind() {
		case reflect.Map, reflect.Struct:
			return "a mapping"
		case reflect.Slice, reflect.Array:
			return "a list"
		}
	}
	if tk != nil {
		return strconv.Quote(tk.Value)
	}
	return "another kind of value"
}

func describeNodeType(t ast.NodeType, tk *token.Token) string {
	switch t {
	case ast.MappingType, ast.MappingValueType, ast.MappingKeyType:
		return "a mapping (key: value)"
	case ast.SequenceType:
		return "a list"
	}
	if tk != nil {
		return strconv.Quote(tk.Value)
	}
	return "a single value"
}
