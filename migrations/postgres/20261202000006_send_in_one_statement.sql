-- Nothing to do on PostgreSQL: a send is already one statement (a CTE that moves the
-- room's counter and inserts). SQLite's migration of this number adds a trigger for it.
SELECT 1;
