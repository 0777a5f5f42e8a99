package cloudformation

import (
	"strings"
	"testing"
)

func TestParseTemplateErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"no resources", "Description: x\n", "At least one Resources member must be defined."},
		{"unsupported type", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", "Unrecognized resource types: [AWS::SQS::Queue]"},
		{"unresolved ref", "Resources:\n  V:\n    Type: AWS::Lambda::Version\n    Properties:\n      FunctionName: !Ref Nope\n", "Unresolved resource dependencies [Nope]"},
		{"getatt of nothing", "Resources:\n  V:\n    Type: AWS::Lambda::Version\n    Properties:\n      FunctionName: !GetAtt Nope.Arn\n", "Fn::GetAtt references undefined resource Nope"},
		{"cycle", `{"Resources": {"A": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "B"}}},
		  "B": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Fn::Sub": "${A}"}}}}}`, "Circular dependency between resources: [A, B]"},
		{"bad yaml", "Resources: [\n", "Template format error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTemplate(tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseTemplate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	body := `Parameters:
  Names:
    Type: CommaDelimitedList
    Default: "a,b,c"
  Env:
    Type: String
    Default: prod
Mappings:
  Sizes:
    prod: {Memory: 512}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Description: !Join ["-", [!Select [1, !Ref Names], !Ref "AWS::Region", "${Literal}"]]
      Handler: !Sub ["${!Keep}-${Env}-${Fn2.Arn}-${X}", {X: x}]
      MemorySize: !FindInMap [Sizes, !Ref Env, Memory]
      Runtime: !Select [0, !Split [",", "x,y"]]
      Role: !Ref AWS::NoValue
  Fn2:
    Type: AWS::Lambda::Function
    Properties: {}
`
	tmpl, err := parseTemplate(strings.Replace(body, `"${Literal}"`, `"lit"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(tmpl.order, ","), "Fn2,Fn"; got != want {
		t.Errorf("order %s, want %s (Fn depends on Fn2 through !Sub)", got, want)
	}
	params, _, err := resolveParams(tmpl, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := &scope{params: params, listType: map[string]bool{"Names": true}, mappings: tmpl.Mappings,
		pseudo: map[string]string{"AWS::Region": "eu-west-1"}, refs: map[string]string{"Fn2": "fn2"},
		attrs: map[string]map[string]string{"Fn2": {"Arn": "arn:fn2"}}}
	v, err := sc.eval(map[string]any{"Fn::Sub": []any{"${X}", map[string]any{"X": "x"}}})
	if err != nil || v != "x" {
		t.Fatalf("Sub with variables = %v, %v", v, err)
	}
	props := tmpl.Resources["Fn"].Properties
	out, err := sc.eval(props)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	for k, want := range map[string]string{"Description": "b-eu-west-1-lit", "Handler": "${Keep}-prod-arn:fn2-x", "Runtime": "x"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %q", k, m[k], want)
		}
	}
	if scalarString(m["MemorySize"]) != "512" {
		t.Errorf("MemorySize = %v", m["MemorySize"])
	}
	if _, ok := m["Role"]; ok {
		t.Errorf("AWS::NoValue left Role = %v", m["Role"])
	}
}
