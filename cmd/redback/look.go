package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redback-dev/redback/agent"
)

// readFlags are the flags of the commands that read an archive.
type readFlags struct {
	identities []string
	passFile   string
}

func (r *readFlags) add(c *cobra.Command) {
	c.Flags().StringArrayVar(&r.identities, "identity", nil, "age identity file for encrypted archives (repeatable; default $REDBACK_IDENTITY_FILE)")
	c.Flags().StringVar(&r.passFile, "passphrase-file", "", passphraseUsage)
}

// options loads the keys for archive name.
func (r *readFlags) options(svc *agent.Service, name string) (agent.ReadOptions, error) {
	ids, err := archiveKeys(name, r.identities, r.passFile, svc.Config().Restore)
	return agent.ReadOptions{Identities: ids, Local: true}, err
}

// resolveArg replaces args[0] = latest by the newest archive's name.
func resolveArg(ctx context.Context, svc *agent.Service, args []string) error {
	if args[0] != agent.Latest {
		return nil
	}
	name, err := svc.Resolve(ctx, args[0])
	if err != nil {
		return err
	}
	args[0] = name
	return nil
}

func keysCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		rf     readFlags
		sel    agent.Selection
		db     int
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "keys NAME",
		Short: "List the keys of an archive (NAME, latest, or ./path/file)",
		Long: "List the keys of an archive: database, type, TTL, element count and size in the archive,\n" +
			"streaming, in archive order. --match takes Redis glob patterns (*, ?, [...], \\ escapes;\n" +
			"\\xHH for any byte); keys that are not printable text are shown with \\xHH and \\\\.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("db") {
				if db < 0 {
					return usageError{fmt.Errorf("--db %d: want a database number", db)}
				}
				sel.DBs = []int{db}
			}
			g.fromFile = agent.IsPath(args[0])
			return g.withService(ctx, func(svc *agent.Service) error {
				ro, err := rf.options(svc, args[0])
				if err != nil {
					return err
				}
				out := bufio.NewWriterSize(g.stdout, 256<<10)
				defer out.Flush()
				var line []byte
				list := jsonList{w: out, member: "keys"}
				if asJSON {
					list.begin()
				} else {
					fmt.Fprintln(out, "DB\tTYPE\tTTL\tELEMENTS\tSIZE\tKEY")
				}
				page, err := svc.Keys(ctx, args[0], agent.KeysOptions{ReadOptions: ro, Selection: sel}, func(k agent.KeyInfo) error {
					if asJSON {
						return list.add(k)
					}
					line = keyLine(line[:0], k)
					_, err := out.Write(line)
					return err
				})
				if asJSON {
					res := agent.KeysResult{KeysPage: page}
					if err != nil {
						res.Error = err.Error()
					} else {
						res.Success = true
					}
					return list.end(g, res, err)
				}
				if err != nil {
					return err
				}
				if page.Filter != nil {
					out.Flush()
					fmt.Fprintf(g.stderr, "note: a partial archive (backup include %q, exclude %q)\n", page.Filter.Include, page.Filter.Exclude)
				}
				return nil
			})
		},
	}
	f := c.Flags()
	f.StringArrayVar(&sel.Match, "match", nil, "list only keys that match this pattern (repeatable: any of them)")
	f.StringArrayVar(&sel.Types, "type", nil, "list only keys of this type (string, hash, list, set, zset, stream, raw or a module type; repeatable)")
	f.IntVar(&db, "db", 0, "list only the keys of this database")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	rf.add(c)
	return c
}

// jsonList streams one JSON object whose first member is a long array:
// begin writes {"member":[, add each element, end the rest of the object
// (the fields of v after the array, which v marshals as null).
type jsonList struct {
	w      *bufio.Writer
	member string
	n      int
}

func (l *jsonList) begin() { l.w.WriteString(`{"` + l.member + `":[`) }

func (l *jsonList) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if l.n > 0 {
		l.w.WriteByte(',')
	}
	l.w.WriteString("\n  ")
	l.w.Write(b)
	l.n++
	return nil
}

// end writes the rest of v and reports err (already in v) as printed.
func (l *jsonList) end(g *globals, v any, err error) error {
	b, _ := json.Marshal(v)
	if l.n > 0 {
		l.w.WriteString("\n")
	}
	l.w.WriteString("],")
	l.w.WriteString(strings.TrimPrefix(string(b), `{"`+l.member+`":null,`))
	l.w.WriteString("\n")
	if err != nil {
		l.w.Flush()
		fmt.Fprintf(g.stderr, "redback: %v\n", err)
		return reportedError{err}
	}
	return nil
}

// keyLine appends the text line of one key: database, type, TTL, elements,
// size and the key, separated by tabs.
func keyLine(b []byte, k agent.KeyInfo) []byte {
	b = strconv.AppendInt(b, int64(k.DB), 10)
	b = append(b, '\t')
	b = append(b, k.Type...)
	if k.RedisType != "" {
		b = append(b, ':')
		b = append(b, k.RedisType...)
	}
	b = append(b, '\t')
	if k.TTL != nil {
		b = append(b, (time.Duration(k.PTTL) * time.Millisecond).String()...)
	} else {
		b = append(b, '-')
	}
	b = append(b, '\t')
	b = strconv.AppendInt(b, k.Elements, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, k.Size, 10)
	b = append(b, '\t')
	b = append(b, k.Escaped...)
	return append(b, '\n')
}

func showCmd(ctx context.Context, g *globals) *cobra.Command {
	var (
		rf     readFlags
		o      agent.ShowOptions
		db     int
		out    string
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "show NAME KEY",
		Short: "Print one key of an archive: value, TTL, field TTLs, stream delivery state",
		Long: "Print one key of an archive. KEY is written as `keys` shows it (\\xHH for any byte, \\\\ for a\n" +
			"backslash). The value is cut at --limit elements (64 KiB of a string); -o FILE writes it whole\n" +
			"(a string as its bytes, other types one JSON element per line).",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := agent.UnquoteKey(args[1])
			if err != nil {
				return usageError{fmt.Errorf("KEY %q: %v", args[1], err)}
			}
			g.fromFile = agent.IsPath(args[0])
			return g.withService(ctx, func(svc *agent.Service) error {
				ro, err := rf.options(svc, args[0])
				if err != nil {
					return err
				}
				o.ReadOptions = ro
				var res agent.ShowResult
				show := func(w io.Writer) error {
					o.Out = w
					res, err = svc.Show(ctx, args[0], key, db, o)
					return err
				}
				switch out {
				case "":
					err = show(nil)
				case "-":
					err = show(g.stdout)
				default:
					err = writeFileAtomicWith(out, show)
				}
				if out == "-" {
					return err
				}
				return g.emit(asJSON, res, err, func(w io.Writer) { printShow(w, res, out) })
			})
		},
	}
	f := c.Flags()
	f.IntVar(&db, "db", 0, "the key's database in the archive")
	f.IntVar(&o.Limit, "limit", 100, "show at most this many elements")
	f.StringVarP(&out, "output", "o", "", "write the whole value to this file (- for stdout)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (the API's response)")
	rf.add(c)
	return c
}

func printShow(w io.Writer, r agent.ShowResult, out string) {
	typ := r.Type
	if r.RedisType != "" {
		typ += " (" + r.RedisType + ")"
	}
	fmt.Fprintf(w, "archive   %s\nkey       %s\ndb        %d\ntype      %s\nttl       %s\nelements  %d\nsize      %d bytes of JSON\n",
		r.Filename, r.Escaped, r.DB, typ, agent.FormatTTL(r.KeyInfo), r.Elements, r.Size)
	if s := r.Stream; s != nil {
		fmt.Fprintf(w, "last id   %s\n", agent.QuoteKey(s.LastID))
		for _, g := range s.Groups {
			fmt.Fprintf(w, "group     %s: last delivered %s, %d consumers, %d pending\n",
				agent.QuoteKey(g.Name), agent.QuoteKey(g.LastDeliveredID), len(g.Consumers), g.PendingCount)
			for _, c := range g.Consumers {
				fmt.Fprintf(w, "  consumer %s seen %s\n", agent.QuoteKey(c.Name), time.UnixMilli(c.SeenTime).UTC().Format(time.RFC3339))
			}
			for _, p := range g.Pending {
				fmt.Fprintf(w, "  pending %s\n", renderValue(p[:]))
			}
		}
	}
	if out != "" {
		fmt.Fprintf(w, "value     written to %s\n", out)
		return
	}
	switch v := r.Value.(type) {
	case agent.Bytes:
		fmt.Fprintf(w, "value     %s\n", agent.QuoteKey(v))
	case []any:
		fmt.Fprintln(w, "value:")
		for _, e := range v {
			fmt.Fprintf(w, "  %s\n", renderValue(e))
		}
	}
	if r.Truncated {
		fmt.Fprintln(w, "(cut; --limit N shows more, -o FILE writes it whole)")
	}
}

// renderValue writes an element of a shown value for a person.
func renderValue(v any) string {
	switch x := v.(type) {
	case agent.Bytes:
		return agent.QuoteKey(x)
	case []agent.Bytes:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = agent.QuoteKey(p)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = renderValue(p)
		}
		return strings.Join(parts, "  ")
	case fmt.Stringer:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = os.Stdout
