// Package sts is the sandbox's AWS Security Token Service: GetCallerIdentity over the query
// protocol, answering for the sandbox's account, so that tools which learn the account from STS
// (aviary iam-policy, the AWS CLI's `sts get-caller-identity`) work against the sandbox.
//
// The rule it keeps: every caller is the account's root user, as the sandbox verifies no
// signature; the account is the sandbox's configured one.
package sts

import (
	"context"
	"net/http"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

//go:generate go run ../protocol/errorsgen -model sts/2011-06-15 -o model_gen.go

// Service is the sandbox's STS.
type Service struct{ account string }

// New returns the STS of the given account ("" is 000000000000).
func New(account string) *Service {
	if account == "" {
		account = "000000000000"
	}
	return &Service{account: account}
}

type getCallerIdentityInput struct{}

type getCallerIdentityOutput struct {
	UserID  string `json:"UserId" xml:"UserId"`
	Account string `json:"Account" xml:"Account"`
	Arn     string `json:"Arn" xml:"Arn"`
}

// Handler serves the STS API; l is asked about every request.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "sts", Model: apiModel, Limits: l}
	protocol.Handle(api, "GetCallerIdentity", s.getCallerIdentity)
	return api
}

func (s *Service) getCallerIdentity(context.Context, *protocol.Request, *getCallerIdentityInput) (*getCallerIdentityOutput, *protocol.Error) {
	// The root user's UserId is the account ID.
	return &getCallerIdentityOutput{UserID: s.account, Account: s.account, Arn: "arn:aws:iam::" + s.account + ":root"}, nil
}
