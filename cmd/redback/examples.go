package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// examples are the Example sections of the commands' help, by command
// path: the seed's workflows (a nightly backup, a restore after data loss,
// a migration) where each command plays its part. A command that sets its
// own Example keeps it.
var examples = map[string]string{
	"backup": `  # Back up now (REDIS_URL, default redis://localhost:6379/0) into ./backups:
  redback backup
  # Another server, into S3, as JSON for a script:
  REDIS_URL=redis://:secret@cache:6379/0 redback backup --storage s3://bk/redis --json
  # A point-in-time snapshot (the server forks, as for a replica):
  redback backup --source replica`,
	"list": `  redback list
  redback list --json | jq -r '.backups[-1].filename'   # the newest`,
	"stats": `  redback stats --json`,
	"restore": `  # After data loss: look first, then restore the newest archive, keys that exist left alone:
  redback restore latest --dry-run
  redback restore latest
  # Only the sessions, replacing what is there:
  redback restore latest --match 'session:*' --overwrite
  # On a fresh host, from a downloaded file, into database 2:
  REDIS_URL=redis://new-host:6379/0 redback restore ./redis_backup_20261201_030000.json.gz --db 0:2`,
	"download": `  redback download latest                       # into ./, under its own name
  redback download redis_backup_20261201_030000.json.gz - | sha256sum`,
	"delete": `  redback delete redis_backup_20261201_030000.json.gz`,
	"verify": `  redback verify latest`,
	"prune": `  redback prune --dry-run          # what the retention rules would delete
  redback prune --keep 7`,
	"export": `  # Load an archive into a server by its own RDB loading (fast, whole):
  redback export latest -o dump.rdb && redis-server --dir . --dbfilename dump.rdb`,
	"import": `  redback import /var/lib/redis/dump.rdb
  redis-cli --rdb - | redback import -`,
	"keys": `  redback keys latest --match 'user:*' --type hash`,
	"show": `  redback show latest 'user:42'`,
	"diff": `  # What changed since last night, and against the live server:
  redback diff redis_backup_20261130_030000.json.gz latest
  redback diff latest --live --match 'order:*'`,
	"schedule": `  redback schedule 24 true 7          # daily, compressed, keep 7 (the seed's arguments)`,
	"serve": `  # The agent: API, console, scheduler, as agent.yaml says:
  REDBACK_TOTP_SECRET=$(cat /etc/redback/totp) redback serve --config /etc/redback/agent.yaml`,
	"drill": `  # Prove that last night's backup restores, into a server redback starts and stops:
  redback drill latest --server-binary /usr/bin/redis-server
  # Into a scratch server of your own (empty, or marked by an earlier drill):
  redback drill latest --redis-url-scratch redis://scratch:6379/0 --json`,
	"pin":             `  redback pin redis_backup_20261201_030000.json.gz --note "before the 14:00 deploy"`,
	"unpin":           `  redback unpin redis_backup_20261201_030000.json.gz`,
	"totp init":       `  redback totp init --account ops@example.com --png totp.png`,
	"totp read-token": `  redback totp read-token --name monitoring`,
	"totp unlock":     `  redback totp unlock`,
	"token list":      `  redback token list --json`,
	"token revoke":    `  redback token revoke ci-deploy`,
	"version":         `  redback version --json`,
	"completion": `  # bash, for every user:
  redback completion bash > /etc/bash_completion.d/redback
  # zsh (with compinit), for you:
  redback completion zsh > "${fpath[1]}/_redback"
  # fish:
  redback completion fish > ~/.config/fish/completions/redback.fish`,
}

// workflows is the root command's Example: the seed's three workflows.
const workflows = `  # Nightly backups with 14 kept, and the admin API (systemd: configs/redback.service):
  redback schedule 24 true 14
  redback serve --config /etc/redback/agent.yaml

  # Restore after data loss (a bad deploy, a FLUSHALL):
  redback list
  redback restore latest --dry-run && redback restore latest

  # Migrate to a new Redis:
  REDIS_URL=redis://old:6379/0 redback backup
  REDIS_URL=redis://new:6379/0 redback restore latest --dry-run
  REDIS_URL=redis://new:6379/0 redback restore latest
  REDIS_URL=redis://new:6379/0 redback diff latest --live`

// withExamples sets the Example of every command of root that has none.
func withExamples(root *cobra.Command) {
	if root.Example == "" {
		root.Example = workflows
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			path := strings.TrimPrefix(sub.CommandPath(), root.Name()+" ")
			if ex, ok := examples[path]; ok && sub.Example == "" {
				sub.Example = ex
			}
			walk(sub)
		}
	}
	walk(root)
}

// environmentTopic is `redback help environment`: every variable redback
// reads. (A command without Run is a help topic.)
func environmentTopic() *cobra.Command {
	return &cobra.Command{
		Use:   "environment",
		Short: "The environment variables redback reads",
		Long: `The environment variables redback reads. A flag beats a variable, a variable beats
agent.yaml; agent.yaml may also use ${VAR} (an error when VAR is unset) and ${VAR:-default}
in any value, so any setting can come from the environment.

  REDIS_URL                 the Redis server (redis://[user:password@]host:port/db, rediss://,
                            unix:///path?db=N); default redis://localhost:6379/0. --redis-url
  REDBACK_STORAGE           where archives live: a folder (default ./backups), s3://bucket/prefix,
                            gs://bucket/prefix. --storage
  REDBACK_TARGET            the target of agent.yaml's targets list to work on. --target
  REDBACK_LISTEN            the API's address (default 127.0.0.1:8080; the image: 0.0.0.0:8080)
  REDBACK_TOTP_SECRET       the base32 TOTP secret of the admin named "admin" (api.totp_secret)
  REDBACK_IDENTITY_FILE     age identity file(s) that open encrypted archives (restore, verify,
                            keys, show, diff, export); comma-separated
  REDBACK_PASSPHRASE_FILE   a file holding the passphrase of passphrase-encrypted archives
  REDBACK_LOG_LEVEL         debug, info, warn or error (beats log.level; one-shot commands log
                            warnings and errors only unless -v)
  REDBACK_CPUPROFILE        write a CPU profile of the run to this file (docs/PERFORMANCE.md)
  REDBACK_MEMPROFILE        write a heap profile at the end of the run to this file

Storage credentials come from the cloud SDKs' own variables and files:

  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE,
  AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE   S3 (the AWS default credential chain)
  GOOGLE_APPLICATION_CREDENTIALS                  GCS (application default credentials)
  STORAGE_EMULATOR_HOST                           a GCS emulator (tests)

Variables only the shipped agent.yaml reads (any ${VAR} works the same way):
REDBACK_WEBHOOK_URL, REDBACK_WEBHOOK_SECRET, REDBACK_SMTP_PASSWORD.`,
	}
}
