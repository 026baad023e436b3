"""Inspection rounds (巡检): routes of checkpoints with printable QR codes, scans from the butler's
phone (reading, photo, note; a finding opens a work order), missed-checkpoint alarms and coverage."""
