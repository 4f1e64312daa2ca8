"""Grid workers' work in the field: household visits (四大一送), patrols and problems reported from the
phone page, each issue found turned into a case."""
