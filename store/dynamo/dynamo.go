// Package dynamo is the team store: one DynamoDB table that every CI runner, the approval server
// and every person's CLI share. Its rules are carried by single-item conditional writes (no
// transactions, no TTL; a release too big for one item is written chunks first, then its head,
// conditionally, which alone decides): a release update applies only to the revision it was computed from; a lock
// is taken only when free, expired, or its owner is known dead, and renewed only by its owner.
//
// The table (on-demand billing):
//
//	pk               sk              what
//	REL#<id>         REL             a release: revision, phase, body (JSON; or bodygz, gzipped; or
//	                                 gen and chunks naming its chunk items); gpk/gsk index it by
//	                                 environment
//	REL#<id>         BODY#<gen>#<i>  chunk i of a release too big for one item: data (see body.go)
//	REL#<id>         EVSEQ           the release's audit counter
//	REL#<id>         EV#<seq>        an audit entry
//	REL#<id>         EVKEY#<key>     an audit entry appended by key (idempotent)
//	LOCK#<key>       LOCK            a deploy lock: holder, owner, acquired, expires
//	SESSION#<id>     REVOKED         an admin session that was logged out: expires (when its
//	                                 cookie would have expired; the item is not needed after it)
//	                                 and ttl, the same in epoch seconds: turn on the table's Time to
//	                                 Live on attribute ttl and DynamoDB deletes revocations no
//	                                 cookie can use any more (nothing else in the table has a ttl)
//
// The global secondary index by-environment (gpk = ENV#<service>#<environment>, gsk = creation
// time and id) lists an environment's releases newest first.
package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
)

// API is the part of *dynamodb.Client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var (
	_ API         = (*dynamodb.Client)(nil)
	_ store.Store = (*Store)(nil)
)

// Store is a DynamoDB table.
type Store struct {
	db    API
	table string
}

// Open uses the table (see Init to create it).
func Open(db API, table string) *Store { return &Store{db: db, table: table} }

// Close does nothing: the client needs no closing.
func (s *Store) Close() error { return nil }

// Index is the global secondary index that lists an environment's releases.
const Index = "by-environment"

// TTLAttribute is the attribute DynamoDB's Time to Live should read (see the package doc): only
// logged-out sessions carry it.
const TTLAttribute = "ttl"

// TableInput is the table `aviary store init` creates: the one description of the schema, which
// the Terraform module and the CloudFormation template under deploy/ are checked against.
func TableInput(table string) *dynamodb.CreateTableInput {
	str := func(n string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: types.ScalarAttributeTypeS}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{str("pk"), str("sk"), str("gpk"), str("gsk")},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(Index),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("gpk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("gsk"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
		Tags: []types.Tag{{Key: aws.String("aviary"), Value: aws.String("store")}},
	}
}

// Init creates the table (TableInput) if it does not exist, and waits until it is active.
// It reports whether it created it.
func Init(ctx context.Context, db *dynamodb.Client, table string) (bool, error) {
	_, err := db.CreateTable(ctx, TableInput(table))
	created := err == nil
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return false, fmt.Errorf("create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 5*time.Minute); err != nil {
		return created, fmt.Errorf("wait for table %s to be active: %w", table, err)
	}
	return created, nil
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": sv(pk), "sk": sv(sk)}
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func releaseKey(id string) string { return "REL#" + id }

// releaseItem is r's head item and its body (see body.go).
func (s *Store) releaseItem(r *release.Release) (map[string]types.AttributeValue, body, error) {
	b, err := encodeBody(r)
	if err != nil {
		return nil, body{}, err
	}
	item := key(releaseKey(r.ID), "REL")
	item["gpk"] = sv("ENV#" + r.Service + "#" + r.Environment)
	item["gsk"] = sv(fmt.Sprintf("%020d#%s", r.CreatedAt.UnixNano(), r.ID))
	item["service"] = sv(r.Service)
	item["environment"] = sv(r.Environment)
	item["phase"] = sv(string(r.Phase))
	item["revision"] = nv(r.Revision)
	for k, v := range b.attrs {
		item[k] = v
	}
	return item, b, nil
}

func (s *Store) CreateRelease(ctx context.Context, r *release.Release) error {
	r.Revision = 1
	item, b, err := s.releaseItem(r)
	if err != nil {
		return err
	}
	if err := s.putChunks(ctx, r.ID, b); err != nil {
		return fmt.Errorf("create release %s: %w", r.ID, err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err != nil && s.failedHead(ctx, r.ID, b) {
		return nil // it landed: the answer was lost, or a retry met the write itself
	}
	if conditionFailed(err) {
		return fmt.Errorf("create release %s: %w", r.ID, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create release %s: %w", r.ID, err)
	}
	return nil
}

// GetRelease reads the head, then its chunks if it has any; when a write replaced the head
// meanwhile (its chunks are gone), it reads the new head.
func (s *Store) GetRelease(ctx context.Context, id string) (*release.Release, error) {
	for range staleReads {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(releaseKey(id), "REL"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", id, err)
		}
		if out.Item == nil {
			return nil, fmt.Errorf("release %s: %w", id, store.ErrNotFound)
		}
		r, err := s.decodeRelease(ctx, out.Item)
		if errors.Is(err, errStale) {
			continue
		}
		return r, err
	}
	return nil, fmt.Errorf("release %s: %w %d times in a row", id, errStale, staleReads)
}

// UpdateRelease writes the new body's chunks (if it needs any), then the head, conditionally on
// the revision; then deletes the chunks of the head it replaced. A reader never sees a
// half-written release: until the head names the new chunks, it names the old ones.
func (s *Store) UpdateRelease(ctx context.Context, r *release.Release) error {
	next := *r
	next.Revision = r.Revision + 1
	item, b, err := s.releaseItem(&next)
	if err != nil {
		return err
	}
	if err := s.putChunks(ctx, r.ID, b); err != nil {
		return fmt.Errorf("update release %s: %w", r.ID, err)
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression:       aws.String("#rev = :rev"),
		ExpressionAttributeNames:  map[string]string{"#rev": "revision"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rev": nv(r.Revision)},
		ReturnValues:              types.ReturnValueAllOld, // to find the chunks it replaces
	})
	if err != nil && s.failedHead(ctx, r.ID, b) {
		// It landed (the answer was lost, or a retry met the write itself); the chunks it
		// replaced are unknown now and stay, never read.
		r.Revision = next.Revision
		return nil
	}
	if conditionFailed(err) {
		if _, gerr := s.GetRelease(ctx, r.ID); gerr != nil {
			return gerr
		}
		return fmt.Errorf("update release %s at revision %d: %w", r.ID, r.Revision, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update release %s: %w", r.ID, err)
	}
	s.replaced(ctx, r.ID, out.Attributes)
	r.Revision = next.Revision
	return nil
}

func (s *Store) ListReleases(ctx context.Context, f store.Filter) ([]*release.Release, error) {
	var out []*release.Release
	keep := func(items []map[string]types.AttributeValue) (bool, error) {
		for _, item := range items {
			if str(item, "sk") != "REL" {
				continue
			}
			if f.Service != "" && str(item, "service") != f.Service || f.Environment != "" && str(item, "environment") != f.Environment ||
				f.Phase != "" && str(item, "phase") != string(f.Phase) {
				continue
			}
			r, err := s.decodeRelease(ctx, item)
			if errors.Is(err, errStale) {
				// Rewritten since the page was read: read it afresh.
				r, err = s.GetRelease(ctx, strings.TrimPrefix(str(item, "pk"), "REL#"))
			}
			if err != nil {
				return false, err
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) >= f.Limit {
				return true, nil
			}
		}
		return false, nil
	}
	if f.Service != "" && f.Environment != "" {
		// Newest first, straight from the index.
		in := &dynamodb.QueryInput{
			TableName: aws.String(s.table), IndexName: aws.String(Index), ScanIndexForward: aws.Bool(false),
			KeyConditionExpression:    aws.String("gpk = :e"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":e": sv("ENV#" + f.Service + "#" + f.Environment)},
		}
		for {
			page, err := s.db.Query(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("list releases: %w", err)
			}
			if done, err := keep(page.Items); err != nil || done {
				return out, err
			}
			if page.LastEvaluatedKey == nil {
				return out, nil
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
	}
	// Without an environment: scan the table's releases, then order them.
	in := &dynamodb.ScanInput{
		TableName: aws.String(s.table), FilterExpression: aws.String("sk = :rel"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":rel": sv("REL")}, ConsistentRead: aws.Bool(true),
	}
	var all []map[string]types.AttributeValue
	for {
		page, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		all = append(all, page.Items...)
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	sort.Slice(all, func(i, j int) bool { return str(all[i], "gsk") > str(all[j], "gsk") })
	_, err := keep(all)
	return out, err
}

// AppendEvent numbers the entry from the release's counter (an atomic ADD) and writes it. An entry
// with a Key is written as the item EVKEY#<key>, conditionally, so that appending it again (after
// a crash, or by two processes flushing the same write) adds nothing.
func (s *Store) AppendEvent(ctx context.Context, e *release.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	pk := releaseKey(e.ReleaseID)
	if e.Key != "" {
		if seq, ok, err := s.keyedSeq(ctx, pk, e.Key); err != nil || ok {
			e.Seq = seq
			return err
		}
	}
	counter, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(pk, "EVSEQ"),
		UpdateExpression:          aws.String("ADD #next :one"),
		ExpressionAttributeNames:  map[string]string{"#next": "next_seq"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": nv(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	e.Seq = num(counter.Attributes, "next_seq")
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	sk := fmt.Sprintf("EV#%012d", e.Seq)
	cond := "attribute_not_exists(pk)"
	if e.Key != "" {
		sk = "EVKEY#" + e.Key
	}
	item := key(pk, sk)
	item["seq"] = nv(e.Seq)
	item["body"] = sv(string(body))
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String(cond)})
	if conditionFailed(err) && e.Key != "" {
		// Another process appended the same entry meanwhile: it is in the trail once.
		seq, _, gerr := s.keyedSeq(ctx, pk, e.Key)
		e.Seq = seq
		return gerr
	}
	if err != nil {
		return fmt.Errorf("append event to %s: %w", e.ReleaseID, err)
	}
	return nil
}

func (s *Store) keyedSeq(ctx context.Context, pk, k string) (int64, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(pk, "EVKEY#"+k), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, false, fmt.Errorf("look up event %s: %w", k, err)
	}
	if out.Item == nil {
		return 0, false, nil
	}
	return num(out.Item, "seq"), true, nil
}

func (s *Store) Events(ctx context.Context, releaseID string) ([]release.Event, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :ev)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(releaseKey(releaseID)), ":ev": sv("EV")},
	}
	var out []release.Event
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("events of %s: %w", releaseID, err)
		}
		for _, item := range page.Items {
			if str(item, "sk") == "EVSEQ" {
				continue
			}
			var e release.Event
			if err := json.Unmarshal([]byte(str(item, "body")), &e); err != nil {
				return nil, err
			}
			e.Seq = num(item, "seq")
			out = append(out, e)
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func lockKey(k string) map[string]types.AttributeValue { return key("LOCK#"+k, "LOCK") }

func decodeLock(item map[string]types.AttributeValue) *store.Lock {
	return &store.Lock{
		Key: strings.TrimPrefix(str(item, "pk"), "LOCK#"), Holder: str(item, "holder"), Owner: str(item, "owner"),
		AcquiredAt: time.Unix(0, num(item, "acquired")), ExpiresAt: time.Unix(0, num(item, "expires")),
	}
}

func (s *Store) GetLock(ctx context.Context, k string) (*store.Lock, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: lockKey(k), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", k, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return decodeLock(out.Item), nil
}

// AcquireLock reads the lock, decides, and writes conditionally on what it read: if anyone
// changed the lock meanwhile, the write fails and the decision is made again.
func (s *Store) AcquireLock(ctx context.Context, l store.Lock, now time.Time, takeOver string) (store.Lock, error) {
	for {
		cur, err := s.GetLock(ctx, l.Key)
		if err != nil {
			return store.Lock{}, err
		}
		next := l
		if next.AcquiredAt.IsZero() {
			next.AcquiredAt = now
		}
		in := &dynamodb.PutItemInput{TableName: aws.String(s.table)}
		switch {
		case cur == nil:
			in.ConditionExpression = aws.String("attribute_not_exists(pk)")
		case cur.Owner == l.Owner, !cur.ExpiresAt.After(now), takeOver != "" && cur.Owner == takeOver:
			if cur.Owner == l.Owner {
				next.AcquiredAt = cur.AcquiredAt
			}
			in.ConditionExpression = aws.String("#owner = :owner AND #exp = :expires")
			in.ExpressionAttributeNames = map[string]string{"#owner": "owner", "#exp": "expires"}
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":owner": sv(cur.Owner), ":expires": nv(cur.ExpiresAt.UnixNano())}
		default:
			return store.Lock{}, &store.LockHeldError{Lock: *cur}
		}
		item := lockKey(l.Key)
		item["holder"] = sv(next.Holder)
		item["owner"] = sv(next.Owner)
		item["acquired"] = nv(next.AcquiredAt.UnixNano())
		item["expires"] = nv(next.ExpiresAt.UnixNano())
		in.Item = item
		_, err = s.db.PutItem(ctx, in)
		if conditionFailed(err) {
			continue // someone moved first: look again
		}
		if err != nil {
			return store.Lock{}, fmt.Errorf("lock %s: %w", l.Key, err)
		}
		return next, nil
	}
}

func (s *Store) RenewLock(ctx context.Context, k, owner string, expires time.Time) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: lockKey(k),
		UpdateExpression:          aws.String("SET #exp = :e"),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner", "#exp": "expires"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": nv(expires.UnixNano()), ":owner": sv(owner)},
	})
	if conditionFailed(err) {
		return fmt.Errorf("renew lock %s: %w", k, store.ErrLockLost)
	}
	if err != nil {
		return fmt.Errorf("renew lock %s: %w", k, err)
	}
	return nil
}

func (s *Store) ReleaseLock(ctx context.Context, k, owner string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: lockKey(k),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": sv(owner)},
	})
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("release lock %s: %w", k, err)
	}
	return nil
}

func sessionKey(id string) map[string]types.AttributeValue { return key("SESSION#"+id, "REVOKED") }

// RevokeSession writes the session's revocation. A revocation is never undone, so a plain put is
// enough: two servers revoking the same session write the same thing.
func (s *Store) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	item := sessionKey(id)
	item["expires"] = nv(expires.UnixNano())
	item["ttl"] = nv(expires.Unix())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

func (s *Store) SessionRevoked(ctx context.Context, id string) (bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: sessionKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, fmt.Errorf("session: %w", err)
	}
	return out.Item != nil, nil
}
