package api

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotline12345/hotline/cdr"
)

// recording streams a call's recording or voicemail: GET /api/v1/recordings/{id}, id being
// the record's id. Supervisors and admins only, every read audited (a citizen's voice is
// personal data); Range requests are served (http.ServeContent), so a player can seek.
func (a *api) recording(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	recs, err := a.cfg.Records.List(r.Context(), cdr.Filter{ID: id, Limit: 1})
	if err != nil {
		a.cfg.Logger.Error("api: recording lookup failed", "call_id", id, "error", err)
		writeError(w, http.StatusInternalServerError, "records unavailable")
		return
	}
	if len(recs) == 0 || recs[0].RecordingFile == "" {
		writeError(w, http.StatusNotFound, "no recording for call "+id)
		return
	}
	rel := filepath.FromSlash(recs[0].RecordingFile)
	if !filepath.IsLocal(rel) || !strings.HasSuffix(rel, ".wav") {
		a.cfg.Logger.Error("api: a record names a recording outside the data dir", "call_id", id, "file", recs[0].RecordingFile)
		writeError(w, http.StatusNotFound, "no recording for call "+id)
		return
	}
	f, err := os.Open(filepath.Join(a.cfg.DataDir, rel))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			writeError(w, http.StatusNotFound, "the recording of call "+id+" is gone (deleted by retention?)")
			return
		}
		a.cfg.Logger.Error("api: recording unreadable", "call_id", id, "error", err)
		writeError(w, http.StatusInternalServerError, "recording unreadable")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "recording unreadable")
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.wav"`)
	w.Header().Set("Cache-Control", "no-store")
	if recs[0].RecordingSHA256 != "" {
		w.Header().Set("ETag", `"`+recs[0].RecordingSHA256+`"`)
	}
	http.ServeContent(w, r, "", st.ModTime(), f)
}
