"""Publishing: the leaderboard, plots, the site, `bench show`, the ablation tables, one table renderer."""
