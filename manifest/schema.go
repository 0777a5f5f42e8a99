package manifest

import _ "embed"

// Schema is aviary.yaml's JSON Schema, for editors (yaml-language-server: $schema=...).
//
//go:embed aviary.schema.json
var Schema []byte
