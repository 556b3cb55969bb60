package sinks

import (
	"context"
	"io"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/redback-dev/redback/sinks/internal/testhook"
)

func init() {
	testhook.RawPut = func(ctx context.Context, sink any, key string, data []byte) error {
		s := sink.(*Sink)
		return s.store.bucket().WriteAll(ctx, s.prefix+key, data, nil)
	}
	testhook.RawKeys = func(ctx context.Context, sink any) ([]string, error) {
		s := sink.(*Sink)
		for attempt := 0; ; attempt++ {
			var keys []string
			it := s.store.bucket().List(&blob.ListOptions{Prefix: s.prefix})
			for {
				obj, err := it.Next(ctx)
				if err == io.EOF {
					return keys, nil
				}
				if err != nil {
					if gcerrors.Code(err) == gcerrors.NotFound && attempt < 5 {
						break // a temporary file vanished mid-walk
					}
					return nil, err
				}
				keys = append(keys, strings.TrimPrefix(obj.Key, s.prefix))
			}
		}
	}
}
