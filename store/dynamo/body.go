package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aviary-deploy/aviary/release"
)

// A release's body is its JSON. DynamoDB refuses items over 400 KB, and a 1,000-function
// release is about a megabyte of JSON, so the body is kept in one of three ways, the smallest
// that fits:
//
//   - body: the JSON itself, in the head item (REL), as every release was kept before;
//   - bodygz: the JSON gzipped, in the head item (a 1,000-function release gzips to ~100 KB);
//   - gen and chunks: the gzipped JSON cut into chunks of chunkSize, each an item
//     REL#<id> / BODY#<gen>#<i> beside the head, which names the generation and counts its chunks.
//
// A generation's chunks are written before the head that names them and never changed after;
// each writer picks a new generation (the revision it writes and a random suffix), so two racing
// writers never write the same chunks. The head's conditional write on the revision is still
// the one decision: the loser's chunks were never named and it deletes them; the winner deletes
// the generation its write replaced. A reader follows the head it read; if that generation was
// deleted meanwhile (a newer head replaced it), it reads the head again. A writer that dies
// between its chunks and its head leaves chunks no head names: never read, and the release as it
// was stays whole.
const (
	// inlineLimit is the largest body kept in the head item: under DynamoDB's 400 KB item limit
	// with room for the head's other attributes.
	inlineLimit = 350_000
	chunkSize   = 350_000
	// staleReads is how many times a reader follows a head whose chunks were replaced under it
	// before giving up: each retry means another write succeeded meanwhile.
	staleReads = 10
)

// body is a release's body as stored: in the head (attrs) and, when chunked, its chunk items.
type body struct {
	attrs  map[string]types.AttributeValue
	gen    string
	chunks [][]byte
}

// encodeBody chooses how r is kept.
func encodeBody(r *release.Release) (body, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return body{}, err
	}
	if len(js) <= inlineLimit {
		return body{attrs: map[string]types.AttributeValue{"body": sv(string(js))}}, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(js); err != nil {
		return body{}, err
	}
	if err := zw.Close(); err != nil {
		return body{}, err
	}
	gz := buf.Bytes()
	if len(gz) <= inlineLimit {
		return body{attrs: map[string]types.AttributeValue{"bodygz": &types.AttributeValueMemberB{Value: gz}}}, nil
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return body{}, err
	}
	b := body{gen: fmt.Sprintf("%020d.%s", r.Revision, hex.EncodeToString(suffix[:]))}
	for len(gz) > 0 {
		n := min(chunkSize, len(gz))
		b.chunks = append(b.chunks, gz[:n])
		gz = gz[n:]
	}
	b.attrs = map[string]types.AttributeValue{"gen": sv(b.gen), "chunks": nv(int64(len(b.chunks)))}
	return b, nil
}

func chunkSK(gen string, i int) string { return fmt.Sprintf("BODY#%s#%06d", gen, i) }

// putChunks writes a generation's chunks, before the head that will name them. On failure it
// deletes what it wrote.
func (s *Store) putChunks(ctx context.Context, id string, b body) error {
	for i, c := range b.chunks {
		item := key(releaseKey(id), chunkSK(b.gen, i))
		item["data"] = &types.AttributeValueMemberB{Value: c}
		if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
			s.deleteChunks(ctx, id, b.gen, i)
			return fmt.Errorf("write chunk %d of release %s: %w", i, id, err)
		}
	}
	return nil
}

// deleteChunks deletes the first n chunks of a generation no head names (any more). It is
// best effort: a chunk left behind is never read, it only takes room (and a role without
// dynamodb:DeleteItem, such as the gate's, leaves them).
func (s *Store) deleteChunks(ctx context.Context, id, gen string, n int) {
	ctx = context.WithoutCancel(ctx)
	for i := range n {
		s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(releaseKey(id), chunkSK(gen, i))})
	}
}

// headNames reads the head, whatever ctx says, to learn whether a write whose answer was an error
// landed after all: whether the head names generation gen. known is false when it cannot be read.
func (s *Store) headNames(ctx context.Context, id, gen string) (named, known bool) {
	out, err := s.db.GetItem(context.WithoutCancel(ctx), &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(releaseKey(id), "REL"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, false
	}
	return out.Item != nil && str(out.Item, "gen") == gen, true
}

// failedHead settles a head write that answered err when the body has chunks of generation gen:
// a cancelled or retried request may have landed (a retry then fails its condition against
// its own write), and deleting the chunks it names would leave a head nothing can read. It
// reports whether the write landed; the chunks are deleted only when the head is known to name
// another generation, and otherwise left (never read, they only take room).
func (s *Store) failedHead(ctx context.Context, id string, b body) (landed bool) {
	if b.gen == "" {
		return false
	}
	named, known := s.headNames(ctx, id, b.gen)
	if known && !named {
		s.deleteChunks(ctx, id, b.gen, len(b.chunks))
	}
	return named
}

// replaced deletes the chunks of the head a write replaced, if it had any.
func (s *Store) replaced(ctx context.Context, id string, old map[string]types.AttributeValue) {
	if gen := str(old, "gen"); gen != "" {
		s.deleteChunks(ctx, id, gen, int(num(old, "chunks")))
	}
}

// errStale says a head's chunks were deleted: a newer head replaced it after it was read.
var errStale = errors.New("the release was replaced while it was read")

// decodeRelease reads a release from its head item, fetching its chunks if it has any.
func (s *Store) decodeRelease(ctx context.Context, item map[string]types.AttributeValue) (*release.Release, error) {
	var js []byte
	switch {
	case item["body"] != nil:
		js = []byte(str(item, "body"))
	case item["bodygz"] != nil:
		gz, _ := item["bodygz"].(*types.AttributeValueMemberB)
		if gz == nil {
			return nil, fmt.Errorf("release %s: bodygz is not binary", str(item, "pk"))
		}
		var err error
		if js, err = gunzip(gz.Value); err != nil {
			return nil, fmt.Errorf("release %s: %w", str(item, "pk"), err)
		}
	default:
		gz, err := s.readChunks(ctx, str(item, "pk"), str(item, "gen"), int(num(item, "chunks")))
		if err != nil {
			return nil, err
		}
		if js, err = gunzip(gz); err != nil {
			return nil, fmt.Errorf("release %s: %w", str(item, "pk"), err)
		}
	}
	var r release.Release
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, fmt.Errorf("release %s: %w", str(item, "pk"), err)
	}
	r.Revision = num(item, "revision")
	return &r, nil
}

// readChunks reads a generation's n chunks in order; errStale if any is missing.
func (s *Store) readChunks(ctx context.Context, pk, gen string, n int) ([]byte, error) {
	if gen == "" || n <= 0 {
		return nil, fmt.Errorf("release %s: the item has no body", pk)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :gen)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(pk), ":gen": sv("BODY#" + gen + "#")},
	}
	var out []byte
	got := 0
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("release %s: read its chunks: %w", pk, err)
		}
		for _, item := range page.Items {
			if str(item, "sk") != chunkSK(gen, got) {
				return nil, errStale
			}
			data, _ := item["data"].(*types.AttributeValueMemberB)
			if data == nil {
				return nil, fmt.Errorf("release %s: chunk %d has no data", pk, got)
			}
			out = append(out, data.Value...)
			got++
		}
		if page.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if got != n {
		return nil, errStale
	}
	return out, nil
}

func gunzip(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
