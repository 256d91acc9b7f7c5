"""SMS fallback through an SMS gateway (Kannel): segments, sendsms client, worker, reports."""
