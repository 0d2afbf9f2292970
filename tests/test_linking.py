"""Schema linking and candidate queries: the right tables for a question, the right query
among several, and doubts when the readings disagree (no model needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from aigis_jupyter.agent.choose import Tried, pick
from aigis_jupyter.agent.deps import SpecDeps
from aigis_jupyter.agent.linking import join_path, label_columns, link
from aigis_jupyter.agent.shapes import candidates
from aigis_jupyter.databases.engines import ConnectionSpec
from aigis_jupyter.databases.runs import QueryResult
from aigis_jupyter.settings import DEFAULT_SYNONYMS


def _deps(path: str | Path) -> SpecDeps:
    return SpecDeps(ConnectionSpec(id="db", db_type="sqlite", host=str(path)))


@pytest.fixture(scope="module")
def chinook(chinook_dir: Path) -> Any:
    deps = _deps(chinook_dir / "chinook.sqlite")
    snap = deps.snapshot("db")
    yield deps, snap, deps.values("db", snap)
    deps.close()


@pytest.fixture(scope="module")
def demo_sqlite(sqlite_demo: str) -> Any:
    deps = _deps(sqlite_demo)
    snap = deps.snapshot("db")
    yield deps, snap, deps.values("db", snap)
    deps.close()


def _tables(db: Any, question: str, n: int) -> list[str]:
    _, snap, values = db
    found = link(question, snap, values=values, synonyms=DEFAULT_SYNONYMS)
    return sorted(t.name for t in found.chosen(n))


@pytest.mark.parametrize(("question", "expected"), [
    ("How many albums are in the store?", ["Album"]),
    ("how many songs cost more than a dollar", ["Track"]),
    ("list the media types", ["MediaType"]),
    ("Which clients are from Norway?", ["Customer"]),
    ("number of staff hired after 2002", ["Employee"]),
    ("How many tracks does each genre have?", ["Genre", "Track"]),
    ("How many Jazz tracks are there?", ["Genre", "Track"]),
    ("total of the invoices billed to Canada", ["Invoice"]),
    ("which playlist has the most songs", ["Playlist", "PlaylistTrack", "Track"]),
    ("How many invoice lines are there?", ["InvoiceLine"]),
])
def test_chinook_questions_link_to_their_tables(chinook, question: str,
                                                 expected: list[str]) -> None:
    assert _tables(chinook, question, 3) == expected


@pytest.mark.parametrize(("question", "expected"), [
    ("How many customers do we have?", ["customers"]),
    ("list the product categories", ["categories"]),
    ("which payment methods exist", ["payments"]),
    ("how many orders were placed through the web channel", ["orders"]),
    ("average unit price of products in each category", ["categories", "products"]),
    ("Who are the employees in Europe?", ["employees", "regions"]),
    ("How many customers does each region have?", ["customers", "regions"]),
    ("total payment amount per method", ["payments"]),
])
def test_demo_questions_link_to_their_tables(demo_sqlite, question: str,
                                             expected: list[str]) -> None:
    assert _tables(demo_sqlite, question, 3) == expected


def test_join_paths_follow_foreign_keys(chinook) -> None:
    _, snap, _ = chinook
    by = {t.name: t for t in snap.tables}
    path = join_path(snap, by["Track"], by["Artist"])
    assert [(h.left.name, h.right.name) for h in path] == [("Track", "Album"),
                                                           ("Album", "Artist")]
    assert join_path(snap, by["Genre"], by["Genre"]) == []
    assert [c.name for c in label_columns(by["Customer"])] == ["FirstName", "LastName"]
    assert [c.name for c in label_columns(by["Album"])] == ["Title"]


def test_names_the_index_does_not_hold_are_tried_as_values(chinook) -> None:
    _, snap, values = chinook
    found = link("How many tracks did Kurt Cobain write?", snap, values=values)
    assert found.phrases == ["Kurt Cobain"]
    found = link("Emails of our customers in France", snap, values=values)
    assert found.phrases == []  # a sentence's first word is not a name
    assert (found.hints[0].column, found.hints[0].value) == ("Country", "France")


def test_a_name_after_by_is_tried_as_a_maker_however_far_the_join(chinook) -> None:
    _, snap, values = chinook
    question = "How many songs by Queen are in the catalogue?"
    sqls = [c.sql for c in candidates(question, link(question, snap, values=values), "sqlite")]
    assert any("Artist.Name = 'Queen'" in s and "JOIN Album" in s for s in sqls), sqls


def _run(db: Any, question: str) -> tuple[Tried | None, list[str], list[Tried]]:
    deps, snap, values = db
    found = link(question, snap, values=values, synonyms=DEFAULT_SYNONYMS)
    tried = []
    with sqlite3.connect(deps.spec.host) as con:
        for c in candidates(question, found, "sqlite"):
            t = Tried(c.sql, c.score, "shape", values=c.values)
            try:
                cur = con.execute(c.sql)
                t.result = _result(c.sql, [d[0] for d in cur.description], cur.fetchall())
            except Exception as exc:
                t.error = str(exc)
            tried.append(t)
    best, reasons = pick(tried)
    return best, reasons, tried


def _result(sql: str, columns: list[str], rows: list[tuple[Any, ...]]) -> QueryResult:
    return QueryResult(sql=sql, columns=columns, data=rows, row_count=len(rows),
                       truncated=False, duration_ms=0.0)


@pytest.mark.parametrize(("question", "gold"), [
    ("How many artists are there?", "SELECT COUNT(*) FROM Artist"),
    ("List the names of all media types", "SELECT Name FROM MediaType"),
    ("Which customers live in Germany? first and last name",
     "SELECT FirstName, LastName FROM Customer WHERE Country = 'Germany'"),
    ("What are the 3 shortest tracks? Names only",
     "SELECT Name FROM Track ORDER BY Milliseconds ASC LIMIT 3"),
    ("What is the average invoice total?", "SELECT AVG(Total) FROM Invoice"),
    ("How many albums does each artist have?",
     "SELECT ar.Name, COUNT(*) FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "GROUP BY ar.ArtistId"),
    ("How many tracks did Kurt Cobain write?",
     "SELECT COUNT(*) FROM Track WHERE Composer = 'Kurt Cobain'"),
    ("Which artists have more than 10 albums?",
     "SELECT ar.Name FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "GROUP BY ar.ArtistId HAVING COUNT(*) > 10"),
    ("Which billing country has the most invoices?",
     "SELECT BillingCountry FROM Invoice GROUP BY BillingCountry ORDER BY COUNT(*) DESC "
     "LIMIT 1"),
    # "total" before a measure noun sums it per group; a row is no sum
    ("Which billing country has the highest total sales?",
     "SELECT BillingCountry FROM Invoice GROUP BY BillingCountry ORDER BY SUM(Total) DESC "
     "LIMIT 1"),
    # a measure word for a number in another table, summed per row of the table asked about
    ("Which customer has spent the most? Give first and last name.",
     "SELECT c.FirstName, c.LastName FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId GROUP BY c.CustomerId ORDER BY SUM(i.Total) DESC LIMIT 1"),
    ("Which media type has sold the most units?",
     "SELECT m.Name FROM InvoiceLine il JOIN Track t ON il.TrackId = t.TrackId JOIN MediaType m "
     "ON t.MediaTypeId = m.MediaTypeId GROUP BY m.MediaTypeId ORDER BY SUM(il.Quantity) DESC "
     "LIMIT 1"),
    # ... but not when the table asked about holds the measure itself
    ("Which track has the largest file size?",
     "SELECT Name FROM Track ORDER BY Bytes DESC LIMIT 1"),
    # sales per genre: the lines' amounts, not each invoice's total once per line
    ("What is the total sales amount for each genre? Show genre name and total.",
     "SELECT g.Name, SUM(il.UnitPrice * il.Quantity) FROM InvoiceLine il JOIN Track t "
     "ON il.TrackId = t.TrackId JOIN Genre g ON t.GenreId = g.GenreId GROUP BY g.GenreId"),
    # a name with a slash; a name that ends a sentence
    ("List the titles of the albums by AC/DC.",
     "SELECT al.Title FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE ar.Name = 'AC/DC'"),
    ("List the customers whose support rep is Steve Johnson. Give first and last names.",
     "SELECT c.FirstName, c.LastName FROM Customer c JOIN Employee e "
     "ON c.SupportRepId = e.EmployeeId WHERE e.FirstName = 'Steve' AND e.LastName = 'Johnson'"),
    # a value in the table asked about before the same value a join away
    ("Which customers are from Canada? Give their emails.",
     "SELECT Email FROM Customer WHERE Country = 'Canada'"),
    # rows that nothing refers to
    ("How many tracks have never been sold?",
     "SELECT COUNT(*) FROM Track WHERE TrackId NOT IN (SELECT TrackId FROM InvoiceLine)"),
    ("Which artists have no albums?",
     "SELECT Name FROM Artist WHERE ArtistId NOT IN (SELECT ArtistId FROM Album)"),
    # a list that starts with its table keeps only the groups that pass
    ("artists with more than 10 albums",
     "SELECT ar.Name FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "GROUP BY ar.ArtistId HAVING COUNT(*) > 10"),
    # a measure against its own average
    ("How many tracks are longer than the average track?",
     "SELECT COUNT(*) FROM Track WHERE Milliseconds > (SELECT AVG(Milliseconds) FROM Track)"),
    # a table that refers to itself: the name filters one side, the other is the answer
    ("Who is Jane Peacock's manager? Give first and last name.",
     "SELECT m.FirstName, m.LastName FROM Employee e JOIN Employee m "
     "ON e.ReportsTo = m.EmployeeId WHERE e.FirstName = 'Jane' AND e.LastName = 'Peacock'"),
    ("Which employees report to Nancy Edwards? Give first and last names.",
     "SELECT e.FirstName, e.LastName FROM Employee e JOIN Employee m "
     "ON e.ReportsTo = m.EmployeeId WHERE m.FirstName = 'Nancy' AND m.LastName = 'Edwards'"),
    # ... but "manager" inside a value is no cue
    ("What's the email of the Sales Manager?",
     "SELECT Email FROM Employee WHERE Title = 'Sales Manager'"),
    # a number of rows ranked by a count of another table's
    ("What are the titles of the 3 albums with the most tracks?",
     "SELECT a.Title FROM Track t JOIN Album a ON t.AlbumId = a.AlbumId GROUP BY a.AlbumId "
     "ORDER BY COUNT(*) DESC LIMIT 3"),
    # a name that has the rows counted is not one of their names; a count of 0 finds none
    ("How many albums does Led Zeppelin have?",
     "SELECT COUNT(*) FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE ar.Name = 'Led Zeppelin'"),
    # a group's average against a bar in other units; "contain more than" is no word search
    ("Which genres have an average track length over 4 minutes?",
     "SELECT g.Name FROM Track t JOIN Genre g ON t.GenreId = g.GenreId GROUP BY g.GenreId "
     "HAVING AVG(t.Milliseconds) > 240000"),
    ("Which playlists contain more than 500 tracks?",
     "SELECT p.Name FROM PlaylistTrack pt JOIN Playlist p ON pt.PlaylistId = p.PlaylistId "
     "GROUP BY p.PlaylistId HAVING COUNT(*) > 500"),
    # "with the latest hire date" ranks by it without showing it
    ("What is the name of the employee with the latest hire date?",
     "SELECT FirstName, LastName FROM Employee ORDER BY HireDate DESC LIMIT 1"),
    # "spent by customers" says who, not what to group by
    ("What is the total amount spent by customers from Germany?",
     "SELECT SUM(i.Total) FROM Invoice i JOIN Customer c ON i.CustomerId = c.CustomerId "
     "WHERE c.Country = 'Germany'"),
    # a table named just before a name: its name column holds it
    ("List the names of tracks on the album 'Big Ones'.",
     "SELECT t.Name FROM Track t JOIN Album a ON t.AlbumId = a.AlbumId "
     "WHERE a.Title = 'Big Ones'"),
    # one sum whose filter joins the lines: the lines' amounts
    ("What is the total revenue from the Jazz genre?",
     "SELECT SUM(il.UnitPrice * il.Quantity) FROM InvoiceLine il JOIN Track t "
     "ON il.TrackId = t.TrackId JOIN Genre g ON t.GenreId = g.GenreId WHERE g.Name = 'Jazz'"),
    # a quoted word after "contains" is searched for, not matched whole
    ("Which albums have a title that contains 'Greatest'? Give the titles.",
     "SELECT Title FROM Album WHERE Title LIKE '%Greatest%'"),
    # a column's values for the rows a filter picks: each row's, not each value once
    ("List the cities of customers in Brazil.",
     "SELECT City FROM Customer WHERE Country = 'Brazil'"),
    # "by" a number with a count of rows orders them; it does not group
    ("Show the 3 biggest invoices by total, with invoice id and total.",
     "SELECT Total, InvoiceId FROM Invoice ORDER BY Total DESC LIMIT 3"),
    # a column named before "more than N": its groups, kept by a count
    ("Which cities have at least 2 customers?",
     "SELECT City FROM Customer GROUP BY City HAVING COUNT(*) >= 2"),
    # "by number of" ranks; the count is not the answer
    ("Name the top 2 billing countries by number of invoices.",
     "SELECT BillingCountry FROM Invoice GROUP BY BillingCountry ORDER BY COUNT(*) DESC "
     "LIMIT 2"),
    # "total" before a column it sums is no column of its own
    ("What is the total quantity of songs purchased?", "SELECT SUM(Quantity) FROM InvoiceLine"),
    # an average of per-group counts
    ("What is the average number of invoices per customer?",
     "SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM Invoice GROUP BY CustomerId)"),
    # every row beside the row it points at
    ("Show every employee's last name with their boss's last name.",
     "SELECT e.LastName, m.LastName FROM Employee e JOIN Employee m ON e.ReportsTo = "
     "m.EmployeeId"),
    # each row of the subject measured by a number of another table, with the columns asked
    ("How much has each customer spent? Show the last name and the total.",
     "SELECT c.LastName, SUM(i.Total) FROM Customer c JOIN Invoice i ON i.CustomerId = "
     "c.CustomerId GROUP BY c.CustomerId"),
    # a filter on many rows per row listed: each row once
    ("Name the albums that have tracks in the Jazz genre",
     "SELECT DISTINCT al.Title FROM Album al JOIN Track t ON t.AlbumId = al.AlbumId "
     "JOIN Genre g ON t.GenreId = g.GenreId WHERE g.Name = 'Jazz'"),
    # an average per group ranks; a number named twice outweighs one named once
    ("Which genre has the smallest average file size? Give its name.",
     "SELECT g.Name FROM Track t JOIN Genre g ON t.GenreId = g.GenreId GROUP BY g.GenreId "
     "ORDER BY AVG(t.Bytes) ASC LIMIT 1"),
    ("Which genre has the longest total running time? Give the name.",
     "SELECT g.Name FROM Track t JOIN Genre g ON t.GenreId = g.GenreId GROUP BY g.GenreId "
     "ORDER BY SUM(t.Milliseconds) DESC LIMIT 1"),
    # who made a thing: the maker's table
    ("who released the album Let There Be Rock",
     "SELECT ar.Name FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE al.Title = 'Let There Be Rock'"),
    # a table's reference to itself, named by its column
    ("Which staff members have no one reporting to them? first and last names",
     "SELECT FirstName, LastName FROM Employee WHERE EmployeeId NOT IN "
     "(SELECT ReportsTo FROM Employee WHERE ReportsTo IS NOT NULL)"),
    # one genre per track: no count per track of its genre
    ("What is the shortest track in the Jazz genre? Give its name.",
     "SELECT t.Name FROM Track t JOIN Genre g ON t.GenreId = g.GenreId WHERE g.Name = 'Jazz' "
     "ORDER BY t.Milliseconds ASC LIMIT 1"),
    # rows no row of a linking table refers to
    ("How many playlists have no tracks?",
     "SELECT COUNT(*) FROM Playlist WHERE PlaylistId NOT IN (SELECT PlaylistId FROM "
     "PlaylistTrack)"),
    ("How many tracks are not in any playlist?",
     "SELECT COUNT(*) FROM Track WHERE TrackId NOT IN (SELECT TrackId FROM PlaylistTrack)"),
    # "the employee's last name": the employee's, not the customer's
    ("How many customers does each employee look after? Show the employee's last name and "
     "the count.",
     "SELECT e.LastName, COUNT(*) FROM Employee e JOIN Customer c ON c.SupportRepId = "
     "e.EmployeeId GROUP BY e.EmployeeId"),
    # the second sentence says what to show
    ("Which employees are based in Lethbridge? Give first and last names.",
     "SELECT FirstName, LastName FROM Employee WHERE City = 'Lethbridge'"),
    # "the word X in the title": that column is searched, and not shown
    ("Which artists have an album with the word 'Greatest' in the title?",
     "SELECT DISTINCT ar.Name FROM Artist ar JOIN Album al ON al.ArtistId = ar.ArtistId "
     "WHERE al.Title LIKE '%Greatest%'"),
    # an average of per-group counts, grouped by a column or by a time unit
    ("What is the average number of invoices per billing country?",
     "SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM Invoice GROUP BY BillingCountry)"),
    ("What is the average number of invoices per year?",
     "SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM Invoice "
     "GROUP BY strftime('%Y', InvoiceDate))"),
    # the rows others point at
    ("Which staff members manage other employees? first and last names",
     "SELECT DISTINCT m.FirstName, m.LastName FROM Employee e JOIN Employee m "
     "ON e.ReportsTo = m.EmployeeId"),
    # counted through a one-to-many filter: each row once
    ("How many invoices contain at least one track from the Blues genre?",
     "SELECT COUNT(DISTINCT il.InvoiceId) FROM InvoiceLine il JOIN Track t "
     "ON il.TrackId = t.TrackId JOIN Genre g ON t.GenreId = g.GenreId WHERE g.Name = 'Blues'"),
    # listed through a one-to-many filter: each row once, two rows of one name both kept
    ("Which playlists include the song 'Enter Sandman'?",
     "SELECT p.Name FROM Playlist p WHERE p.PlaylistId IN (SELECT pt.PlaylistId FROM "
     "PlaylistTrack pt JOIN Track t ON t.TrackId = pt.TrackId WHERE t.Name = 'Enter Sandman')"),
    # a quoted word is searched for, whatever word it is; by the column named before
    ("List the artists whose name starts with 'The'.",
     "SELECT Name FROM Artist WHERE Name LIKE 'The%'"),
    # four joins away: customers, invoices, lines, tracks, genres
    ("How many different customers bought tracks from the Blues genre?",
     "SELECT COUNT(DISTINCT i.CustomerId) FROM Invoice i JOIN InvoiceLine il "
     "ON il.InvoiceId = i.InvoiceId JOIN Track t ON il.TrackId = t.TrackId "
     "JOIN Genre g ON t.GenreId = g.GenreId WHERE g.Name = 'Blues'"),
    # a group's bar beside a filter on a value
    ("List the albums by Iron Maiden that have more than 15 tracks. Give titles.",
     "SELECT al.Title FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId JOIN Track t "
     "ON t.AlbumId = al.AlbumId WHERE ar.Name = 'Iron Maiden' GROUP BY al.AlbumId "
     "HAVING COUNT(*) > 15"),
    # "the most popular ... by number of": the count ranks
    ("What is the most popular media type by number of tracks?",
     "SELECT m.Name FROM MediaType m JOIN Track t ON t.MediaTypeId = m.MediaTypeId "
     "GROUP BY m.MediaTypeId ORDER BY COUNT(*) DESC LIMIT 1"),
    # sales counted in the lines that record them
    ("How many tracks have been sold in total?", "SELECT SUM(Quantity) FROM InvoiceLine"),
    ("How many tracks were sold in each genre? Show genre name and count.",
     "SELECT g.Name, SUM(il.Quantity) FROM InvoiceLine il JOIN Track t ON il.TrackId = "
     "t.TrackId JOIN Genre g ON t.GenreId = g.GenreId GROUP BY g.GenreId"),
    ("How many different tracks have been sold?",
     "SELECT COUNT(DISTINCT TrackId) FROM InvoiceLine"),
    # a quoted value the index holds is no person's name as well
    ("How many employees have the title 'IT Staff'?",
     "SELECT COUNT(*) FROM Employee WHERE Title = 'IT Staff'"),
    # the words of a quoted name are no names of their own
    ("Which genre does the track 'Princess of the Dawn' belong to?",
     "SELECT g.Name FROM Track t JOIN Genre g ON t.GenreId = g.GenreId "
     "WHERE t.Name = 'Princess of the Dawn'"),
    # "report to <name>": the name is the manager's
    ("How many staff report to Nancy Edwards?",
     "SELECT COUNT(*) FROM Employee e JOIN Employee m ON e.ReportsTo = m.EmployeeId "
     "WHERE m.FirstName = 'Nancy' AND m.LastName = 'Edwards'"),
    # rows whose reference to the table named is empty
    ("How many customers have no support rep?",
     "SELECT COUNT(*) FROM Customer WHERE SupportRepId IS NULL"),
    ("Which employees have no manager? first and last names",
     "SELECT FirstName, LastName FROM Employee WHERE ReportsTo IS NULL"),
    # "is not empty": a value on file
    ("Which customers' company is not empty? Give first and last names.",
     "SELECT FirstName, LastName FROM Customer WHERE Company IS NOT NULL"),
    # "by each <column>" groups by the column
    ("total amount billed by each billing city",
     "SELECT BillingCity, SUM(Total) FROM Invoice GROUP BY BillingCity"),
    # "each" after "use" is no word to search for
    ("How many tracks use each genre? Show genre name and count.",
     "SELECT g.Name, COUNT(*) FROM Track t JOIN Genre g ON t.GenreId = g.GenreId "
     "GROUP BY g.GenreId"),
    # a bar written as a word
    ("Which artists have more than two albums?",
     "SELECT ar.Name FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "GROUP BY ar.ArtistId HAVING COUNT(*) > 2"),
    # "the N <column values> with the most <rows>": rows counted per value
    ("What are the 3 cities with the most invoices?",
     "SELECT BillingCity FROM Invoice GROUP BY BillingCity ORDER BY COUNT(*) DESC LIMIT 3"),
    # "the total number of <a number column>" sums it
    ("total number of bytes of the tracks in the Jazz genre",
     "SELECT SUM(t.Bytes) FROM Track t JOIN Genre g ON t.GenreId = g.GenreId "
     "WHERE g.Name = 'Jazz'"),
    # a verb after the table asked about is no table of its own
    ("Which artist recorded the album 'Let There Be Rock'?",
     "SELECT ar.Name FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE al.Title = 'Let There Be Rock'"),
    # "show employee id": the group's key a customer's reference points at
    ("How many customers does each support rep have? Show the employee id and count.",
     "SELECT e.EmployeeId, COUNT(*) FROM Customer c JOIN Employee e "
     "ON c.SupportRepId = e.EmployeeId GROUP BY e.EmployeeId"),
    # money ranks by a sum, not a count; the columns asked for are shown
    ("Which employee's customers spent the most? Give the employee's last name.",
     "SELECT e.LastName FROM Invoice i JOIN Customer c ON i.CustomerId = c.CustomerId "
     "JOIN Employee e ON c.SupportRepId = e.EmployeeId GROUP BY e.EmployeeId "
     "ORDER BY SUM(i.Total) DESC LIMIT 1"),
    # never sold, two tables away from the sales
    ("Which artists have never sold a track?",
     "SELECT Name FROM Artist WHERE ArtistId NOT IN (SELECT al.ArtistId FROM InvoiceLine il "
     "JOIN Track t ON il.TrackId = t.TrackId JOIN Album al ON t.AlbumId = al.AlbumId)"),
    # a hierarchy ranked and counted
    ("Which manager has the most direct reports?",
     "SELECT m.FirstName, m.LastName FROM Employee e JOIN Employee m "
     "ON e.ReportsTo = m.EmployeeId GROUP BY m.EmployeeId ORDER BY COUNT(*) DESC LIMIT 1"),
    ("How many employees does each manager have?",
     "SELECT m.FirstName, m.LastName, COUNT(*) FROM Employee e JOIN Employee m "
     "ON e.ReportsTo = m.EmployeeId GROUP BY m.EmployeeId"),
    # "the invoice with the highest total": one row's number ranks
    ("Which customer made the invoice with the largest total? Give first and last name.",
     "SELECT c.FirstName, c.LastName FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId ORDER BY i.Total DESC LIMIT 1"),
    # a blank is no group to list
    ("Which composers wrote more than 15 tracks?",
     "SELECT Composer FROM Track WHERE Composer IS NOT NULL GROUP BY Composer "
     "HAVING COUNT(*) > 15"),
    # ranked by a number it is not asked to show
    ("Show the ids of the 5 tracks with the largest file sizes.",
     "SELECT TrackId FROM Track ORDER BY Bytes DESC LIMIT 5"),
    # "when" asks for a date
    ("When was the most recent invoice issued?", "SELECT MAX(InvoiceDate) FROM Invoice"),
    # "which country's customers": the customers grouped by their country
    ("Which country's customers have the most invoices?",
     "SELECT c.Country FROM Invoice i JOIN Customer c ON i.CustomerId = c.CustomerId "
     "GROUP BY c.Country ORDER BY COUNT(*) DESC LIMIT 1"),
    # a year of the rows that point at the subject: each customer once
    ("How many customers from Brazil bought something in 2023?",
     "SELECT COUNT(DISTINCT c.CustomerId) FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId WHERE c.Country = 'Brazil' "
     "AND strftime('%Y', i.InvoiceDate) = '2023'"),
    # "per <a value>": the rows holding it
    ("How many customers does each sales support agent look after?",
     "SELECT e.FirstName, e.LastName, COUNT(*) FROM Customer c JOIN Employee e "
     "ON c.SupportRepId = e.EmployeeId GROUP BY e.EmployeeId"),
    # a stored unit shown in the one asked for
    ("What is the average length of a Jazz track in minutes?",
     "SELECT AVG(t.Milliseconds) / 60000.0 FROM Track t JOIN Genre g ON t.GenreId = g.GenreId "
     "WHERE g.Name = 'Jazz'"),
    ("total size in MB of the tracks on the album 'Big Ones'",
     "SELECT SUM(t.Bytes) / 1000000.0 FROM Track t JOIN Album a ON t.AlbumId = a.AlbumId "
     "WHERE a.Title = 'Big Ones'"),
    # revenue ranks by a sum
    ("Which billing city has the most revenue?",
     "SELECT BillingCity FROM Invoice GROUP BY BillingCity ORDER BY SUM(Total) DESC LIMIT 1"),
    # distinct rows of the subject per group
    ("How many different customers bought something in each year?",
     "SELECT strftime('%Y', InvoiceDate) AS y, COUNT(DISTINCT CustomerId) FROM Invoice "
     "GROUP BY y"),
    # "invoice 7": a row by its key
    ("Which tracks are on invoice 7? names only",
     "SELECT t.Name FROM InvoiceLine il JOIN Track t ON il.TrackId = t.TrackId "
     "WHERE il.InvoiceId = 7"),
    # a count of the groups that pass a bar
    ("How many artists have more than 5 albums?",
     "SELECT COUNT(*) FROM (SELECT ArtistId FROM Album GROUP BY ArtistId HAVING COUNT(*) > 5)"),
    # "the most tracks sold" ranks by the lines that sold them
    ("Which media type has the most tracks sold?",
     "SELECT m.Name FROM InvoiceLine il JOIN Track t ON il.TrackId = t.TrackId "
     "JOIN MediaType m ON t.MediaTypeId = m.MediaTypeId GROUP BY m.MediaTypeId "
     "ORDER BY SUM(il.Quantity) DESC LIMIT 1"),
    # a superlative per group is that group's largest
    ("For each media type, what is the longest track length? media type name and length",
     "SELECT m.Name, MAX(t.Milliseconds) FROM Track t JOIN MediaType m "
     "ON t.MediaTypeId = m.MediaTypeId GROUP BY m.MediaTypeId"),
    # "the highest total track length" sums the length
    ("Which album has the highest total track length? Give the title.",
     "SELECT al.Title FROM Track t JOIN Album al ON t.AlbumId = al.AlbumId "
     "GROUP BY al.AlbumId ORDER BY SUM(t.Milliseconds) DESC LIMIT 1"),
    # a year kept under every reading
    ("Which customer spent the most in 2024? Give the full name.",
     "SELECT c.FirstName, c.LastName FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId WHERE strftime('%Y', i.InvoiceDate) = '2024' "
     "GROUP BY c.CustomerId ORDER BY SUM(i.Total) DESC LIMIT 1"),
    # "released by <a name>": the maker's name, though the titles are asked for
    ("Which albums were released by Metallica? Give the titles.",
     "SELECT al.Title FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE ar.Name = 'Metallica'"),
    # "most recent year first": the groups in time order
    ("Number of invoices per year, most recent year first.",
     "SELECT strftime('%Y', InvoiceDate) AS y, COUNT(*) FROM Invoice GROUP BY y ORDER BY y DESC"),
    # the date the verb names, not another date column
    ("Which employees were hired after 2003? first name and hire date",
     "SELECT FirstName, HireDate FROM Employee WHERE HireDate >= '2004-01-01'"),
    # "... and the amount": the sum a group passed is shown
    ("Which customers have spent more than 45 in total? Give last names and the amount.",
     "SELECT c.LastName, SUM(i.Total) FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId GROUP BY c.CustomerId HAVING SUM(i.Total) > 45"),
    # a value naming a kind of row ranks the rows holding it, counting only what is asked
    ("Which sales support agent has the most customers? Give first and last name.",
     "SELECT e.FirstName, e.LastName FROM Customer c JOIN Employee e "
     "ON c.SupportRepId = e.EmployeeId GROUP BY e.EmployeeId ORDER BY COUNT(*) DESC LIMIT 1"),
    # a number inside a quoted name is part of the name
    ("How many tracks are on the playlist 'Classical 101 - The Basics'?",
     "SELECT COUNT(*) FROM PlaylistTrack pt JOIN Playlist p ON pt.PlaylistId = p.PlaylistId "
     "WHERE p.Name = 'Classical 101 - The Basics'"),
    # "how long is ...": a value, not the row
    ("How long is the shortest track, in milliseconds?", "SELECT MIN(Milliseconds) FROM Track"),
    # "per customer country": the column of the table named before it
    ("Total invoiced per customer country.",
     "SELECT c.Country, SUM(i.Total) FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId GROUP BY c.Country"),
    # a bar on what was sold counts the lines
    ("Which media types have more than 100 tracks sold?",
     "SELECT m.Name FROM InvoiceLine il JOIN Track t ON il.TrackId = t.TrackId "
     "JOIN MediaType m ON t.MediaTypeId = m.MediaTypeId GROUP BY m.MediaTypeId "
     "HAVING SUM(il.Quantity) > 100"),
    # tenure ranks by the hire date
    ("Who is the longest-serving employee? first and last name",
     "SELECT FirstName, LastName FROM Employee ORDER BY HireDate ASC LIMIT 1"),
    # "top 3 ... by total <table>": what ranks, shown when asked
    ("Top 3 customers by total invoices - last name and total",
     "SELECT c.LastName, SUM(i.Total) FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId GROUP BY c.CustomerId ORDER BY SUM(i.Total) DESC LIMIT 3"),
    # a key and names of the group, in the order asked
    ("How many invoices does each customer have? customer id, last name and count",
     "SELECT c.CustomerId, c.LastName, COUNT(*) FROM Invoice i JOIN Customer c "
     "ON i.CustomerId = c.CustomerId GROUP BY c.CustomerId"),
    # a column named before a bar on a sum groups the rows the bar sums
    ("Which billing countries have total sales over 100?",
     "SELECT BillingCountry FROM Invoice GROUP BY BillingCountry HAVING SUM(Total) > 100"),
    # "include tracks by ..." searches no word
    ("Which media types include tracks by Aerosmith?",
     "SELECT DISTINCT m.Name FROM Track t JOIN MediaType m ON t.MediaTypeId = m.MediaTypeId "
     "JOIN Album al ON t.AlbumId = al.AlbumId JOIN Artist ar ON al.ArtistId = ar.ArtistId "
     "WHERE ar.Name = 'Aerosmith'"),
])
def test_the_chosen_candidate_answers_the_question(chinook, question: str, gold: str) -> None:
    _answers(chinook, question, gold)


@pytest.mark.parametrize(("question", "gold"), [
    # a column used by a filter is shown when asked for
    ("List products priced above 250 along with their price",
     "SELECT name, unit_price FROM products WHERE unit_price > 250"),
    # after a dash, what to show
    ("customers with the last name Tanaka - first name and city",
     "SELECT first_name, city FROM customers WHERE last_name = 'Tanaka'"),
    # a flag grouped by is no filter
    ("product count by discontinued flag",
     "SELECT discontinued, COUNT(*) FROM products GROUP BY discontinued"),
    # "order lines" are the order's items
    ("How many order lines have a quantity above 3?",
     "SELECT COUNT(*) FROM order_items WHERE quantity > 3"),
    ("How many products are discontinued?",
     "SELECT COUNT(*) FROM products WHERE discontinued"),
    ("How many payments have a negative amount?",
     "SELECT COUNT(*) FROM payments WHERE amount < 0"),
    ("What payment method is used the least?",
     "SELECT method FROM payments GROUP BY method ORDER BY COUNT(*) ASC LIMIT 1"),
    ("Give me every country where we have customers",
     "SELECT DISTINCT country FROM customers"),
])  # more in ENGINE_QUESTIONS, on every engine
def test_demo_candidates_answer_the_question(demo_sqlite, question: str, gold: str) -> None:
    _answers(demo_sqlite, question, gold)


def _answers(db: Any, question: str, gold: str) -> None:
    deps = db[0]
    best, _, tried = _run(db, question)
    assert best is not None, [t.sql for t in tried]
    with sqlite3.connect(deps.spec.host) as con:
        want = sorted(map(tuple, con.execute(gold).fetchall()))
    got = sorted(best.result.df.itertuples(index=False, name=None))
    assert got == want, best.sql


def test_demo_questions_get_working_candidates(demo_sqlite) -> None:
    best, reasons, _ = _run(demo_sqlite, "How many orders were cancelled?")
    assert best is not None and "status = 'cancelled'" in best.sql and not reasons


def _tried(sql: str, prior: float, rows: list[tuple[Any, ...]] | None, source: str = "shape",
           values: int = 0) -> Tried:
    t = Tried(sql, prior, source, values=values)
    if rows is None:
        t.error = "no such column"
    else:
        t.result = _result(sql, [f"c{i}" for i in range(len(rows[0]) if rows else 1)], rows)
    return t


def test_selection_drops_failures_and_prefers_rows_to_nothing() -> None:
    failed = _tried("SELECT nope", 0.99, None)
    empty = _tried("SELECT a WHERE x = 'Emails'", 0.9, [])
    rows = _tried("SELECT a", 0.7, [(1,), (2,)])
    best, reasons = pick([failed, empty, rows])
    assert best is rows and reasons == []
    best, reasons = pick([failed])
    assert best is None
    best, reasons = pick([empty])
    assert best is empty and "no rows" in reasons[0]


def test_agreement_counts_only_across_sources() -> None:
    a = _tried("SELECT COUNT(*) FROM t", 0.6, [(5,)])
    b = _tried("SELECT COUNT(*) FROM t JOIN u", 0.58, [(5,)])  # a variant of the same reading
    c = _tried("SELECT COUNT(DISTINCT x) FROM t", 0.65, [(3,)])
    best, _ = pick([a, b, c])
    assert best is c  # two shapes that agree are one reading, not two votes
    model = _tried("SELECT count(*) FROM t", 0.55, [(5,)], source="model")
    best, _ = pick([a, b, c, model])
    assert best is not None and best.key() == a.key()  # the model, written apart, agrees


def test_a_found_value_outweighs_a_guess_and_a_close_rival_makes_it_unsure() -> None:
    guess = _tried("SELECT Title FROM Album", 0.75, [("x",), ("y",)])
    found = _tried("SELECT Title FROM Employee WHERE FirstName = 'M'", 0.45, [("Manager",)],
                   values=1)
    best, reasons = pick([guess, found])
    assert best is found
    assert reasons  # the other reading came within reach
    _, reasons = pick([_tried("SELECT 1", 0.9, [(1,)])])
    assert reasons == []


# -- in a turn: the embedded model's path, with a scripted completion model -----------------


async def test_a_sure_candidate_answers_without_asking_the_model_for_sql(settings,
                                                                         deps) -> None:
    from test_agent import make_runner, turn

    runner, model = make_runner(settings, deps, ["There are 25 customers."],
                                style="completion")
    events = await turn(runner, "How many customers are there?", chart=False)
    sql = [e["sql"] for e in events if e["type"] == "sql"]
    assert sql == ["SELECT COUNT(*) AS count FROM customers"], events
    assert len(model.seen) == 1  # the answer only: no model call for the query
    assert deps.results[sql[0]].df.iloc[0, 0] == 25


async def test_the_models_query_stands_beside_the_candidates_when_none_is_sure(
        settings, deps) -> None:
    from test_agent import make_runner, turn

    from aigis_jupyter.agent.doubts import UNSURE_LEAD

    runner, model = make_runner(settings, deps, [
        " name FROM regions ORDER BY id LIMIT 1", "North is the most interesting region."],
        style="completion")
    events = await turn(runner, "Show me something interesting", chart=False)
    assert [e["sql"] for e in events if e["type"] == "sql"] == [
        "SELECT name FROM regions ORDER BY id LIMIT 1"]
    answer = events[-1]["full_response"]
    assert UNSURE_LEAD in answer  # nothing else agreed with it, and it is a guess
    # a doubted result is stated plainly, not in the model's words, which would restate
    # the question as if the result answered it
    assert len(model.seen) == 1  # no table named: no candidate, the model wrote the query
    assert "most interesting" not in answer and "North" in answer


async def test_a_verified_query_wins_over_the_shapes(settings, shop) -> None:
    from test_agent import make_runner, turn
    from test_agent_support import SqliteDeps

    gold = "SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'"
    taught = SqliteDeps(shop, examples=(("How many orders were cancelled?", gold),))
    try:
        runner, _ = make_runner(settings, taught, ["24 orders were cancelled."],
                                style="completion")
        events = await turn(runner, "how many orders were cancelled", chart=False)
    finally:
        taught.close()
    sql = next(e for e in events if e["type"] == "sql")
    assert sql["sql"] == gold and sql.get("verified") is True


ENGINE_QUESTIONS = [
    ("How many orders were placed in 2023?",
     "SELECT COUNT(*) FROM orders WHERE strftime('%Y', order_date) = '2023'"),
    ("How many customers does each region have?",
     "SELECT r.name, COUNT(*) FROM customers c JOIN regions r ON c.region_id = r.region_id "
     "GROUP BY r.region_id"),
    ("How many products are discontinued?",
     "SELECT COUNT(*) FROM products WHERE discontinued = 1"),
    ("Which channel had the most orders in 2024?",
     "SELECT channel FROM orders WHERE strftime('%Y', order_date) = '2024' GROUP BY channel "
     "ORDER BY COUNT(*) DESC LIMIT 1"),
    ("How many customers have never placed an order?",
     "SELECT COUNT(*) FROM customers WHERE customer_id NOT IN "
     "(SELECT customer_id FROM orders)"),
    ("Which employees does Grace Novak manage? first and last names",
     "SELECT e.first_name, e.last_name FROM employees e JOIN employees m "
     "ON e.manager_id = m.employee_id WHERE m.first_name = 'Grace' AND m.last_name = 'Novak'"),
]


def test_candidates_run_on_every_engine(demo, sqlite_demo: str) -> None:
    """Written in SQLite's syntax, carried to PostgreSQL's and MySQL's by sqlglot: the
    chosen candidate gives the same answer on each engine."""
    _, spec, _ = demo
    deps = SpecDeps(spec)
    try:
        snap = deps.snapshot(spec.id)
        values = deps.values(spec.id, snap)
        dialect = deps.dialect(spec.id)
        for question, gold in ENGINE_QUESTIONS:
            found = link(question, snap, values=values, synonyms=DEFAULT_SYNONYMS)
            tried = [Tried(c.sql, c.score, "shape", values=c.values)
                     for c in candidates(question, found, dialect)]
            for t in tried:
                try:
                    t.result = deps.run_sql(spec.id, t.sql)
                except Exception as exc:  # a candidate that fails is dropped, as in a turn
                    t.error = str(exc)
            best, _ = pick(tried)
            assert best is not None, (question, [(t.sql, t.error) for t in tried])
            with sqlite3.connect(sqlite_demo) as con:
                want = sorted(tuple(str(v) for v in r) for r in con.execute(gold).fetchall())
            got = sorted(tuple(str(v) for v in r)
                         for r in best.result.df.itertuples(index=False, name=None))
            assert got == want, (spec.db_type, question, best.sql)
    finally:
        deps.close()


def test_a_distinct_count_outweighs_a_model_that_counts_every_row(chinook) -> None:
    """"How many different X": the model's COUNT(*) agreeing with the plain count must not
    beat the count of distinct values of the column the question names."""
    from aigis_jupyter.agent.choose import MODEL_PRIOR

    question = "How many different billing cities are there?"
    deps = chinook[0]
    _, _, tried = _run(chinook, question)
    model = Tried("SELECT COUNT(*) FROM Invoice", MODEL_PRIOR, "model")
    with sqlite3.connect(deps.spec.host) as con:
        model.result = _result(model.sql, ["n"], con.execute(model.sql).fetchall())
    for t in tried:
        t.score = 0.0
    best, _ = pick([*tried, model])
    assert best is not None and "COUNT(DISTINCT" in best.sql, [(t.sql, t.score) for t in tried]


async def test_close_readings_can_be_ranked_by_the_models_likelihood(chinook) -> None:
    """With `query_likelihood`, the model's preference among readings within RIVAL_GAP of
    the best decides; a model that cannot score leaves the best as it was."""
    from types import SimpleNamespace

    from aigis_jupyter.agent.choose import _likeliest

    question = "Which customers are from Canada? Give their emails."
    best, reasons, tried = _run(chinook, question)
    assert best is not None and reasons  # another reading comes close
    close = [t for t in tried if t.result is not None and t.key() != best.key()
             and t.score >= best.score - 0.1]
    assert close

    class Scorer:
        def likelihoods(self, header: str, pairs: list[tuple[str, str]]) -> list[float]:
            assert all(q == f"Question: {question}" for _, q in pairs)
            return [0.0 if sql.strip() == f"SQL: {close[0].sql}" else -50.0
                    for sql, _ in pairs]

    chosen = await _likeliest(SimpleNamespace(model=Scorer()), question, best, tried)
    assert chosen.key() == close[0].key()
    unchanged = await _likeliest(SimpleNamespace(model=object()), question, best, tried)
    assert unchanged is best
