"""Date formats for the admin's pages (FORMAT_MODULE_PATH): Django's English ones show times to
the minute ("Dec. 2, 2026, 8:46 a.m."), too coarse to tell a job's steps apart."""
