package api

import (
	"net/http"
)

// pinRequest is POST /api/backup/pin/{filename}'s body (optional).
type pinRequest struct {
	// Note is kept with the pin ("" keeps the note it has).
	Note string `json:"note"`
}

// pin pins an archive (admins only): retention never prunes it.
func (s *Server) pin(w http.ResponseWriter, r *http.Request) error {
	var req pinRequest
	t, name, err := s.archiveCall(w, r, false, &req)
	if err != nil {
		return err
	}
	res, err := t.Service.Pin(r.Context(), name, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// unpin removes an archive's pin and note (admins only).
func (s *Server) unpin(w http.ResponseWriter, r *http.Request) error {
	t, name, err := s.archiveCall(w, r, false, nil)
	if err != nil {
		return err
	}
	res, err := t.Service.Unpin(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
