package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redback-dev/redback/agent/archiving"
	"github.com/redback-dev/redback/agent/retention"
)

// Prune applies policy to the archives: it deletes what retention.Plan does
// not keep, except archives being read (Delete refuses those with ErrBusy:
// they are reported as kept), and returns the result in `redback prune`'s
// shape (Keep is the policy's keep_last) with the decisions. With dryRun
// nothing is deleted (and archives being read are not looked for).
func (s *Service) Prune(ctx context.Context, policy retention.Policy, dryRun bool) (res PruneResult, _ []retention.Decision, err error) {
	defer func() { settle(&res.Success, &res.Error, err) }()
	if !dryRun {
		defer func(start time.Time) { s.observe(Op{Kind: OpPrune, Deleted: len(res.Deleted)}, start, err) }(s.now())
	}
	res = PruneResult{DryRun: dryRun, Keep: policy.Last, Kept: []string{}, Deleted: []string{}}
	fail := func(err error) (PruneResult, []retention.Decision, error) {
		return res, nil, err
	}
	if err := policy.Validate(); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	infos, err := s.sink.List(ctx)
	if err != nil {
		return fail(fmt.Errorf("list archives: %w", translate(err)))
	}
	archives := retention.FromInfos(infos)
	ds := retention.Plan(archives, policy, s.now())
	window, err := archiving.LoadWith(ctx, s.sink, infos)
	if err != nil {
		return fail(fmt.Errorf("list segments: %w", translate(err)))
	}
	keepLiveBase(ds, window)
	if sus := retention.Suspects(archives, policy.SuspectDrop); len(sus) > 0 {
		res.Suspect = sus
	}
	for _, d := range ds {
		if d.Keep {
			res.Kept = append(res.Kept, d.Name)
			continue
		}
		if dryRun {
			res.Deleted = append(res.Deleted, d.Name)
			continue
		}
		_, derr := s.delete(ctx, d.Name)
		switch {
		case errors.Is(derr, ErrBusy):
			s.log.Info("archive spared: being read", "file", d.Name)
			res.Kept = append(res.Kept, d.Name)
			continue
		case errors.Is(derr, ErrNotFound):
		case derr != nil:
			return fail(fmt.Errorf("delete %s: %w", d.Name, derr))
		}
		s.log.Info("archive pruned", "file", d.Name, "created", d.Created.UTC().Format(time.RFC3339))
		res.Deleted = append(res.Deleted, d.Name)
	}
	n, err := s.pruneSegments(ctx, window, res.Kept, dryRun)
	res.DeletedSegments = n
	if err != nil {
		return fail(err)
	}
	return res, ds, nil
}
