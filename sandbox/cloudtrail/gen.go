package cloudtrail

//go:generate go run ../protocol/errorsgen -model cloudtrail/2013-11-01 -o model_gen.go
