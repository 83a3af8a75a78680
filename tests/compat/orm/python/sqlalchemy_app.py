"""
tests/compat/orm/python/sqlalchemy_app.py - the ORM scenario with SQLAlchemy
(Debian python3-sqlalchemy 1.4, PyMySQL driver).

    sqlalchemy_app.py plain|scoped HOST PORT USER PASSWORD DB BASE

plain: the mapper's primary key is (userid, id) and relationships join on
userid too, so every statement the unit of work sends carries the user.
scoped: id is the primary key, as an app without sharding would declare it;
the user is declared once per transaction (after_begin) with
SW_ORM_SCOPE_TXN.
"""

import os
import sys

from sqlalchemy import (BigInteger, Column, ForeignKey, Integer, String, and_, create_engine,
                        event, func, select, text, update)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.orm import Session, declarative_base, joinedload, relationship, selectinload

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import check  # noqa: E402


def models(scoped):
    Base = declarative_base()
    if scoped:
        class Note(Base):
            __tablename__ = "orm_notes"
            id = Column(BigInteger, primary_key=True)
            userid = Column(BigInteger, nullable=False)
            title = Column(String(100), nullable=False)
            body = Column(String(500))
            views = Column(Integer, nullable=False, default=0)
            comments = relationship("Comment", back_populates="note", order_by="Comment.text")

        class Comment(Base):
            __tablename__ = "orm_comments"
            id = Column(BigInteger, primary_key=True)
            userid = Column(BigInteger, nullable=False)
            note_id = Column(BigInteger, ForeignKey("orm_notes.id"), nullable=False)
            text = Column(String(200), nullable=False)
            note = relationship("Note", back_populates="comments")
    else:
        class Note(Base):
            __tablename__ = "orm_notes"
            userid = Column(BigInteger, primary_key=True, autoincrement=False)
            id = Column(BigInteger, primary_key=True, autoincrement=True)
            title = Column(String(100), nullable=False)
            body = Column(String(500))
            views = Column(Integer, nullable=False, default=0)
            comments = relationship(
                "Comment", back_populates="note", order_by="Comment.text",
                primaryjoin="and_(Comment.userid == Note.userid, Comment.note_id == Note.id)",
                foreign_keys="[Comment.userid, Comment.note_id]")

        class Comment(Base):
            __tablename__ = "orm_comments"
            userid = Column(BigInteger, primary_key=True, autoincrement=False)
            id = Column(BigInteger, primary_key=True, autoincrement=True)
            note_id = Column(BigInteger, nullable=False)
            text = Column(String(200), nullable=False)
            note = relationship(
                "Note", back_populates="comments",
                primaryjoin="and_(Comment.userid == Note.userid, Comment.note_id == Note.id)",
                foreign_keys="[Comment.userid, Comment.note_id]")
    return Note, Comment


class App:
    def __init__(self, a):
        self.a = a
        self.Note, self.Comment = models(a.scoped)
        self.engine = create_engine(
            "mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8mb4" % (a.user, a.password, a.host,
                                                                  a.port, a.db),
            pool_size=2, future=True)
        self.user = a.u1
        if a.scoped:
            scope = os.environ["SW_ORM_SCOPE_TXN"]

            @event.listens_for(Session, "after_begin")
            def declare_user(session, transaction, connection):
                connection.exec_driver_sql(scope.replace("{userid}", str(self.user)))
        self.first_id = None

    # One Session per request, as a web app would.
    def session(self):
        return Session(self.engine, future=True)

    def mine(self, q):
        """Limits a query to the request's user: in scoped mode the router does."""
        return q if self.a.scoped else q.filter_by(userid=self.user)

    def key(self, id_):
        return id_ if self.a.scoped else (self.user, id_)

    def first(self, s):
        return self.mine(s.query(self.Note)).filter_by(title="first").one()

    def create(self):
        with self.session() as s:
            n = self.Note(userid=self.user, title="first", body="hello")
            s.add(n)
            s.commit()
            check(n.id and n.id > 0, "generated id", n.id)
            self.first_id = n.id

    def bulk_create(self):
        with self.session() as s:
            s.bulk_insert_mappings(self.Note, [dict(userid=self.user, title="bulk-%d" % i,
                                                    views=0) for i in (1, 2, 3)])
            s.commit()
            n = self.mine(s.query(self.Note)).filter(self.Note.title.like("bulk-%")).count()
            check(n == 3, "3 bulk rows", n)

    def get(self):
        with self.session() as s:
            n = s.get(self.Note, self.key(self.first_id))
            check(n is not None and n.title == "first", "get by identity", n and n.title)

    def paginate(self):
        with self.session() as s:
            got = [n.title for n in self.mine(s.query(self.Note)).order_by(self.Note.title)
                   .limit(2).offset(2)]
            check(got == ["bulk-3", "first"], "page 2", got)

    def count(self):
        with self.session() as s:
            n = self.mine(s.query(self.Note)).count()
            check(n == 4, "4 notes", n)

    def save(self):
        with self.session() as s:
            n = self.first(s)
            n.body = "edited"
            s.commit()
        with self.session() as s:
            check(self.first(s).body == "edited", "saved body")

    def refresh(self):
        with self.session() as s:
            n = self.first(s)
            s.execute(update(self.Note).where(self.Note.userid == self.user,
                                              self.Note.title == "first")
                      .values(body="changed"))
            s.refresh(n)
            check(n.body == "changed", "refreshed body", n.body)
            s.commit()

    def increment(self):
        with self.session() as s:
            q = self.mine(s.query(self.Note)).filter_by(title="first")
            q.update({self.Note.views: self.Note.views + 1}, synchronize_session=False)
            s.commit()
            check(self.first(s).views == 1, "views 1")

    def upsert(self):
        with self.session() as s:
            stmt = mysql_insert(self.Note).values(userid=self.user, title="first",
                                                  body="upserted", views=0)
            s.execute(stmt.on_duplicate_key_update(body=stmt.inserted.body))
            s.commit()
            n = self.first(s)
            check((n.body, n.views) == ("upserted", 1), "upserted body, views kept",
                  (n.body, n.views))
            check(self.mine(s.query(self.Note)).count() == 4, "still 4 notes")

    def get_or_create(self):
        ids = []
        for want_created in (True, False):
            with self.session() as s:
                n = self.mine(s.query(self.Note)).filter_by(title="goc").one_or_none()
                created = n is None
                if created:
                    n = self.Note(userid=self.user, title="goc")
                    s.add(n)
                    s.commit()
                check(created == want_created, "created %s" % want_created)
                ids.append(n.id)
        check(ids[0] == ids[1], "the same row", ids)

    def relation_create(self):
        with self.session() as s:
            n = self.first(s)
            n.comments.append(self.Comment(userid=self.user, text="c1"))
            n.comments.append(self.Comment(userid=self.user, text="c2"))
            s.commit()

    def eager(self):
        with self.session() as s:
            # plain: joinedload (LEFT JOIN ... ON userid and note_id); selectinload's
            # (userid, note_id) IN ((u, id), ...) names no key column alone.
            load = selectinload if self.a.scoped else joinedload
            notes = self.mine(s.query(self.Note)).options(load(self.Note.comments)) \
                .order_by(self.Note.title).all()
            s.close()      # detached: only eagerly loaded data is there
            got = {n.title: [c.text for c in n.comments] for n in notes}
            check(got.get("first") == ["c1", "c2"], "eager comments", got)

    def lazy(self):
        with self.session() as s:
            n = self.first(s)
            check([c.text for c in n.comments] == ["c1", "c2"], "lazy comments")
        with self.session() as s:
            c = self.mine(s.query(self.Comment)).filter_by(text="c1").one()
            check(c.note.title == "first", "lazy note of a comment", c.note.title)

    def delete_object(self):
        with self.session() as s:
            s.delete(self.mine(s.query(self.Note)).filter_by(title="bulk-3").one())
            s.commit()
            check(self.mine(s.query(self.Note)).filter_by(title="bulk-3").count() == 0, "gone")

    def delete_query(self):
        with self.session() as s:
            n = self.mine(s.query(self.Note)).filter(self.Note.title.like("bulk-%")) \
                .delete(synchronize_session=False)
            s.commit()
            check(n >= 2, "bulk-1 and bulk-2 deleted", n)
            check(self.mine(s.query(self.Note)).filter(self.Note.title.like("bulk-%")).count()
                  == 0, "no bulk-* left")

    def tx_commit(self):
        with self.session() as s:
            with s.begin():
                s.add(self.Note(userid=self.user, title="tx-a"))
                self.first(s).views += 1
        with self.session() as s:
            check(self.mine(s.query(self.Note)).filter_by(title="tx-a").count() == 1, "tx-a")
            check(self.first(s).views == 2, "views 2")

    def tx_rollback(self):
        with self.session() as s:
            s.add(self.Note(userid=self.user, title="tx-b"))
            s.flush()
            check(self.mine(s.query(self.Note)).filter_by(title="tx-b").count() == 1,
                  "tx-b inside")
            s.rollback()
            check(self.mine(s.query(self.Note)).filter_by(title="tx-b").count() == 0,
                  "tx-b gone")
            s.commit()

    def row_lock(self):
        with self.session() as s:
            n = self.mine(s.query(self.Note)).filter_by(title="first").with_for_update().one()
            n.views += 1
            s.commit()
            check(self.first(s).views == 3, "views 3")

    def second_user(self):
        # The same app, next request, another user (on the other shard).
        self.user = self.a.u2
        try:
            with self.session() as s:
                s.add(self.Note(userid=self.user, title="other"))
                s.commit()
                check(self.mine(s.query(self.Note)).count() == 1, "1 note of user 2")
        finally:
            self.user = self.a.u1


if __name__ == "__main__":
    common.main(App)
