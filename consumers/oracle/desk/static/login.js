// The login page: sends the name and password as JSON (the desk takes nothing else, so
// no other page's form can log a labeller in or out), then opens the desk.
"use strict";

const form = document.getElementById("login");
const problem = document.getElementById("problem");

function say(message) {
  problem.textContent = message;
  problem.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const body = JSON.stringify({ name: form.elements.name.value.trim(),
    password: form.elements.password.value });
  try {
    const response = await fetch("/login", { method: "POST", body,
      headers: { "Content-Type": "application/json" } });
    if (response.ok) {
      location.assign("/");
      return;
    }
    const reply = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    say(response.status === 401 ? "Wrong name or password." : reply.error);
  } catch (error) {
    say(`The desk did not answer: ${error}`);
  }
  form.elements.password.value = "";
  form.elements.password.focus();
});
