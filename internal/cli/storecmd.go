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
	storeFlags
	File string `short:"f" default:"aviary.yaml" placeholder:"PATH" help:"The manifest, for its store."`
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
