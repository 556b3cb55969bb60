package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	_ "time/tzdata" // time zones for schedule.timezone in images without /usr/share/zoneinfo

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent/config"
	"github.com/redback-dev/redback/agent/daemon"
)

func scheduleCmd(ctx context.Context, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "schedule [INTERVAL_HOURS] [COMPRESS] [MAX_BACKUPS]",
		Short: "Take backups on a schedule, in the foreground, until SIGTERM",
		Long: "Take backups on a schedule in the foreground until SIGINT or SIGTERM, like the seed's\n" +
			"backup_scheduler.py: every INTERVAL_HOURS hours and daily at 03:00 (schedule.daily_at),\n" +
			"gzip-compressed when COMPRESS is true, keeping the MAX_BACKUPS newest archives after each\n" +
			"successful backup. The arguments default to agent.yaml's schedule.interval_hours,\n" +
			"backup.compress and retention.keep_last (24 true 7). Cron expressions, the time zone,\n" +
			"jitter, retention rules, notifications and the lease come from agent.yaml.\n" +
			"With a targets list, every target's scheduler runs side by side (only the one --target\n" +
			"names, with it); the arguments then apply to each of them.\n\n" +
			"Example: redback schedule 12 true 14   # every 12 hours, compressed, keep 14",
		Args: cobra.MaximumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, ts, err := g.selectTargets(true)
			if err != nil {
				return err
			}
			for i := range ts {
				if err := applyScheduleArgs(&ts[i].Config, args); err != nil {
					return usageError{err}
				}
			}
			return g.schedule(ctx, g.logger(cfg, false), ts)
		},
	}
}

// schedule runs the scheduler of every target in ts side by side until ctx
// is cancelled or one of them fails (which stops the others).
func (g *globals) schedule(ctx context.Context, log *slog.Logger, ts []target) error {
	setMemoryLimit(ts, true)
	d, err := daemon.Open(ctx, ts, daemon.Options{Log: log, Clock: g.clock, ScheduleAll: true})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
}

// applyScheduleArgs puts the seed's positional arguments into cfg.
func applyScheduleArgs(cfg *config.Config, args []string) error {
	if len(args) > 0 {
		h, err := strconv.ParseFloat(strings.TrimSpace(args[0]), 64)
		if err != nil || h <= 0 || math.IsInf(h, 0) || math.IsNaN(h) || h > 24*366 {
			return fmt.Errorf("INTERVAL_HOURS: %q: want a number of hours greater than 0, like 24 or 0.5", args[0])
		}
		if h*3600 < 10 {
			return fmt.Errorf("INTERVAL_HOURS: %q is less than 10 seconds", args[0])
		}
		cfg.Schedule.IntervalHours = h
	}
	if len(args) > 1 {
		switch strings.ToLower(strings.TrimSpace(args[1])) {
		case "true", "yes", "1", "on":
			cfg.Backup.Compress = true
		case "false", "no", "0", "off":
			cfg.Backup.Compress = false
		default:
			return fmt.Errorf("COMPRESS: %q: want true or false", args[1])
		}
	}
	if len(args) > 2 {
		n, err := strconv.Atoi(strings.TrimSpace(args[2]))
		if err != nil || n < 1 {
			return fmt.Errorf("MAX_BACKUPS: %q: want a whole number of at least 1 (the newest backup is always kept)", args[2])
		}
		cfg.Retention.KeepLast = n
	}
	return nil
}
