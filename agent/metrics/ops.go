package metrics

import (
	"github.com/redback-dev/redback/agent"
)

// Record counts op, an operation of target's agent.Service that ended
// (agent.Service.Observe(m.Observer(target)) feeds it): every operation
// moves redback_operations_total and redback_operation_duration_seconds;
// a backup moves the backup_* series as well, a prune
// redback_retention_deleted_total; an operation that changed storage makes
// the next scrape list it again (Watch).
func (m *Metrics) Record(target string, op agent.Op) {
	kind := string(op.Kind)
	outcome := "success"
	if op.Err != nil {
		outcome = "failure"
	}
	m.ops.WithLabelValues(target, kind, outcome).Inc()
	m.opDuration.WithLabelValues(target, kind).Observe(op.End.Sub(op.Start).Seconds())
	if op.Err == nil {
		m.opLast.WithLabelValues(target, kind).Set(unix(op.End))
	}
	switch op.Kind {
	case agent.OpBackup:
		m.Started(target, op.Start)
		if op.Err != nil {
			m.Failed(target)
			break
		}
		m.Succeeded(target, op.End, op.End.Sub(op.Start), op.Size, op.Keys)
		m.Suspect(target, op.Suspect)
	case agent.OpPrune:
		if op.Err == nil {
			m.Pruned(target, op.Deleted)
		}
	}
	switch op.Kind {
	case agent.OpBackup, agent.OpImport, agent.OpUpload, agent.OpPrune, agent.OpDelete, agent.OpVerify:
		m.inv.invalidate(target)
	}
}

// Observer returns the function that records target's operations, for
// agent.Service.Observe.
func (m *Metrics) Observer(target string) func(agent.Op) {
	m.Target(target)
	return func(op agent.Op) { m.Record(target, op) }
}
