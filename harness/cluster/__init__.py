"""The device lab: nodes that say what they hold, and a launcher that sends each job to one (Ray)."""
