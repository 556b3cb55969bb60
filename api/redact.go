package api

import (
	"net/http"
	"path"
	"strings"

	"github.com/redback-dev/redback/agent"
)

// Where the archives live on the server's disk is for admins only: a
// read-only token (a monitoring machine) sees an archive's name as its
// "filepath" and a storage folder by its last element ("folder backups").
// Bucket URLs (s3://, gs://), which name no local path and hold no
// credentials, are shown to both.

// seesPaths reports whether the request's principal may see local paths.
func seesPaths(r *http.Request) bool {
	p, ok := principalOf(r)
	return ok && p.admin
}

// isLocal reports whether a location is a local path (a folder or a
// file:// URL) rather than a bucket URL.
func isLocal(loc string) bool {
	return !strings.Contains(loc, "://") || strings.HasPrefix(strings.ToLower(loc), "file://")
}

// publicFilepath is an archive's "filepath" as r may see it.
func publicFilepath(r *http.Request, fp, name string) string {
	if fp == "" || seesPaths(r) || !isLocal(fp) {
		return fp
	}
	return name
}

// publicStorage is a storage description ("folder /srv/b", "s3://b/p") as
// r may see it.
func publicStorage(r *http.Request, desc string) string {
	if desc == "" || seesPaths(r) {
		return desc
	}
	loc, folder := strings.CutPrefix(desc, "folder ")
	if !folder && !strings.HasPrefix(strings.ToLower(desc), "file://") {
		return desc
	}
	loc = strings.TrimPrefix(strings.TrimPrefix(loc, "file://"), "FILE://")
	base := path.Base(strings.TrimRight(strings.ReplaceAll(loc, `\`, "/"), "/"))
	if base == "." || base == "/" || base == "" {
		return "folder"
	}
	return "folder " + base
}

// publicList is a ListResult as r may see it.
func publicList(r *http.Request, res agent.ListResult) agent.ListResult {
	if seesPaths(r) {
		return res
	}
	out := agent.ListResult{Backups: make([]agent.BackupInfo, len(res.Backups))}
	for i, b := range res.Backups {
		b.Filepath = publicFilepath(r, b.Filepath, b.Filename)
		out.Backups[i] = b
	}
	return out
}

// publicResult is a job's result as r may see it.
func publicResult(r *http.Request, res any) any {
	switch v := res.(type) {
	case agent.BackupResult:
		v.Filepath = publicFilepath(r, v.Filepath, v.Filename)
		return v
	case *agent.BackupResult:
		if v == nil {
			return v
		}
		c := *v
		c.Filepath = publicFilepath(r, c.Filepath, c.Filename)
		return &c
	}
	return res
}
