package cli

import (
	"fmt"
	"strings"

	"github.com/aviary-deploy/aviary/store/dynamo"
)

// storeCmd groups the store's commands.
type storeCmd struct {
	Init storeInitCmd `cmd:"" help:"Create the store: for dynamodb://TABLE, the table (on-demand billing), waiting until it is active."`
}

type storeInitCmd struct {
	manifestFlags
	storeFlags
}

func (c *storeInitCmd) Help() string {
	return `Creates the store named by --store (or AVIARY_STORE, else the manifest's store:, else
sqlite://.aviary/state.db). For dynamodb://TABLE it creates the table with on-demand billing
and waits until it is active; for sqlite://PATH it creates the file and its schema.

DynamoDB is reached through the standard AWS chain (AWS_PROFILE, AWS_REGION, credentials). To
use a local DynamoDB server (DynamoDB Local, dynalite) instead, point the SDK at it:

  AWS_ENDPOINT_URL_DYNAMODB=http://localhost:8000 aviary store init --store dynamodb://aviary-releases

(AWS_ENDPOINT_URL sets every service's endpoint at once.) Every command that opens the store
honours the same variables.`
}

func (c *storeInitCmd) Run(e *env) error {
	m, _ := manifestFlags{File: c.File}.load()
	url := c.storeFlags.url(m)
	if strings.HasPrefix(url, "dynamodb://") {
		db, table, err := dynamoClient(e.ctx, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Creating DynamoDB table %s (on-demand billing)…\n", table)
		created, err := dynamo.Init(e.ctx, db, table)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(e.stdout, "Table %s is active. Point Aviary at it with store: %s in aviary.yaml, or AVIARY_STORE=%s.\n", table, url, url)
		} else {
			fmt.Fprintf(e.stdout, "Table %s already exists and is active.\n", table)
		}
		return nil
	}
	st, err := c.storeFlags.open(e.ctx, m)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(e.stdout, "Store %s is ready.\n", url)
	return nil
}
