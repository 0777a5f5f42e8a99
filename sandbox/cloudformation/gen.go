package cloudformation

//go:generate go run ../protocol/errorsgen -model cloudformation/2010-05-15 -o model_gen.go
