"""databoard: events, teams, submissions and leaderboards."""
