"""Manager reports (日清-周结-月报): work orders, SLA, maintenance, inspections and energy cost per
community and period, reproducible for any past period."""
