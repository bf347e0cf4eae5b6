--! Previous: sha1:1435a2f60fdbef629aa48101e18f363d69967850
--! Hash: sha1:4984380f46e5f9a0bac5a869caa38d8460bef08b
--! Message: The database search_path includes sheratan

-- The owner finds its schema through "$user"; every other role (the API
-- roles, reporting logins in psql or a BI tool) through this default, after
-- public, so that unqualified names still resolve as before and \dt, \d
-- document_chunks show the store. A role's own setting, or a session's SET,
-- still wins. (Functions pin their search_path; the API qualifies every name.)
do $$
begin
  execute format('alter database %I set search_path = "$user", public, sheratan', current_database());
end
$$;
